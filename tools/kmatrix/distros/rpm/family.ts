/**
 * RPM distros: Fedora, AlmaLinux, Rocky, CentOS Stream, Oracle Linux and Amazon Linux 2 / 2023,
 * which share one package format, one repository format (repomd.xml → primary index) and one
 * header layout (kernel-devel's /usr/src/kernels/<uname -r>/). They differ only in where their
 * repositories are (archive/repositories.ts). Modules are compiled by Debian-based toolchains
 * chosen by the gcc major the kernel was built with, as driverkit does, so this family makes no
 * toolchain images of its own.
 *
 * What a build asks (layout.ts) is imported here; reading archives (archive/) is loaded only when
 * asked for, so it is not a build input.
 */
import { KmatrixError } from '../../core/errors.ts';
import type { DistroFamily } from '../family.ts';
import { RPM_DISTRO_IDS, rpmListKey } from './names.ts';
import {
  configPackage,
  HEADER_MOUNT_RULES,
  kernelDir,
  kernelImageFile,
  missingHostTools,
  hostToolsEnv,
  ROLES,
  signingTool,
} from './layout.ts';

export const rpm: DistroFamily = {
  name: 'rpm',
  distros: RPM_DISTRO_IDS,
  listKey: rpmListKey,
  crawlerDistros: [
    'fedora',
    'almalinux',
    'rocky',
    'centos',
    'ol',
    'amazonlinux2',
    'amazonlinux2022',
    'amazonlinux2023',
  ],
  roles: ROLES,
  crawlHelp: `repodata/repomd.xml, then its primary index (.gz/.zst/.xz, checked against the
checksum repomd.xml gives) of each repository of <distro> <release>: Fedora's release
and updates trees, BaseOS and AppStream for AlmaLinux, Rocky, CentOS Stream and
Oracle Linux, and the repositories Amazon Linux's mirror.list files name.
Mirrors: KMATRIX_<DISTRO>_MIRROR (FEDORA, ALMALINUX, ROCKY, CENTOS, OL, AMAZONLINUX);
repomd.xml.asc is checked by gpgv when KMATRIX_<DISTRO>_KEYRING names a keyring,
otherwise only an https mirror is trusted.`,

  async crawl(log) {
    const { crawlRpm } = await import('./archive/crawl.ts');
    const { rpmDistro } = await import('./archive/repositories.ts');
    return { kernels: (release, arch, distro, os) => crawlRpm(rpmDistro(os), release, arch, distro, log) };
  },
  async crawlerEntries(distroOf) {
    const { rpmKernel } = await import('./archive/crawler-entry.ts');
    return (entry, key) => rpmKernel(entry, key, distroOf);
  },

  kernelDir,
  headerMountRules: HEADER_MOUNT_RULES,
  missingHostTools,
  hostToolsEnv,
  configPackage,
  signingTool,

  plainFlavour: () => 'default',

  kernelImageFile,
  noImage: (kernelrelease) => `the repository lists no kernel-core (or kernel) package of ${kernelrelease}`,

  async toolchainRootfs() {
    throw new KmatrixError('the rpm family makes no toolchain images: RPM kernels build with Debian-based toolchains', {
      stage: 'toolchain',
      remedy:
        'set the toolchain\'s "distro" to a Debian distro of the policy (toolchains are chosen by the gcc major a kernel was built with)',
    });
  },
};
