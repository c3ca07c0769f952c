/**
 * Debian and Ubuntu: kernels from the Debian archive (main, point-release updates, security), read
 * through the mirror this machine's apt uses, and from Ubuntu's (archive.ubuntu.com for amd64,
 * ports.ubuntu.com for arm64); the same signed index format, two header layouts (layout.ts).
 * Toolchains are made by mmdebstrap from Debian, reproducibly.
 *
 * What a build asks (layout.ts) is imported here; reading the archive (archive/: crawling, crawler
 * entries, mirrors, toolchain root filesystems) is loaded only when asked for. A build never runs archive/, so
 * it is not a build input: editing the crawler rebuilds nothing (see compile/inputs.ts).
 */
import { KeyedRuns } from '../../core/pool.ts';
import type { DistroFamily } from '../family.ts';
import type { CrawlMemo } from './archive/crawl.ts';
import type { Mirrors } from './archive/mirrors.ts';
import {
  configPackage,
  HEADER_MOUNT_RULES,
  hostToolsEnv,
  kernelDir,
  missingHostTools,
  ROLES,
  signingTool,
} from './layout.ts';
import { debianArch } from './arch.ts';

let mirrors: Promise<Mirrors> | undefined;
/** This machine's Debian mirrors, read once per process (apt's sources, or the KMATRIX_DEBIAN_* overrides). */
const machineMirrors = () =>
  (mirrors ??= import('./archive/mirrors.ts')
    .then((m) => m.detectMirrors())
    .catch((error: unknown) => {
      mirrors = undefined;
      throw error;
    }));

export const deb: DistroFamily = {
  name: 'deb',
  distros: ['debian', 'ubuntu'],
  defaultDistro: 'debian',
  listKey: (distro) => distro,
  crawlerDistros: ['debian', 'ubuntu'],
  roles: ROLES,
  crawlHelp: `Packages indexes of <release>, <release>-updates and <release>-security (main),
from the mirror in /etc/apt/sources.list.d/ (override: KMATRIX_DEBIAN_MIRROR,
KMATRIX_DEBIAN_SECURITY_MIRROR), each checked against its suite's InRelease, whose signature
gpgv checks against debian-archive-keyring (override: KMATRIX_DEBIAN_KEYRING); arm64 kernels
list both the amd64 kbuild used to cross-compile and the arm64 one for native runners.
Ubuntu ("distro": "ubuntu", release = codename): the same suites of archive.ubuntu.com
(amd64) and ports.ubuntu.com (arm64), checked against KMATRIX_UBUNTU_KEYRING (overrides:
KMATRIX_UBUNTU_MIRROR, KMATRIX_UBUNTU_SECURITY_MIRROR, KMATRIX_UBUNTU_PORTS_MIRROR).`,

  async crawl(log) {
    // The amd64 index also serves arm64's cross kbuild: one fetch per suite and arch for the whole
    // crawl, and one signed Release per suite.
    const memo: CrawlMemo = { releases: new KeyedRuns({ remember: true }), indexes: new KeyedRuns({ remember: true }) };
    return {
      async kernels(release, arch, distro, os) {
        if (os === 'ubuntu') {
          const { crawlUbuntu } = await import('./archive/ubuntu.ts');
          return crawlUbuntu(release, arch, log, memo, distro);
        }
        const { crawlDebian } = await import('./archive/crawl.ts');
        return crawlDebian(await machineMirrors(), release, arch, log, memo, distro);
      },
    };
  },
  async crawlerEntries(distroOf) {
    const { ubuntuKernel } = await import('./archive/ubuntu-entry.ts');
    const { debianKernel } = await import('./archive/crawler-entry.ts');
    // A machine without a Debian mirror can still read Ubuntu's entries; each Debian one says why not.
    const mirrors = await machineMirrors().catch(() => undefined);
    return (entry, key) => {
      if (key === 'ubuntu') return ubuntuKernel(entry, (codename) => distroOf(codename, 'ubuntu'));
      if (!mirrors) return { why: 'no Debian mirror found in /etc/apt/sources.list{,.d} (set KMATRIX_DEBIAN_MIRROR)' };
      return debianKernel(entry, mirrors, (codename) => distroOf(codename, 'debian'));
    };
  },

  kernelDir,
  headerMountRules: HEADER_MOUNT_RULES,
  missingHostTools,
  hostToolsEnv,
  configPackage,
  signingTool,

  // Named like the arch (amd64, arm64): not rt, not cloud.
  // Debian names its plain flavour after the arch (amd64, arm64); Ubuntu's is generic on both.
  plainFlavour: (arch, os) => (os === 'ubuntu' ? 'generic' : debianArch[arch]),

  kernelImageFile: (kernelrelease) => `boot/vmlinuz-${kernelrelease}`,
  noImage: (kernelrelease, packageVersion) =>
    `the archive index lists no unsigned kernel image of ${kernelrelease} ${packageVersion} (linux-image-${kernelrelease}-unsigned on Debian, linux-image-unsigned-${kernelrelease} on Ubuntu)`,

  async toolchainRootfs(spec, out, log) {
    const { toolchainRootfs } = await import('./archive/toolchain-rootfs.ts');
    return toolchainRootfs(spec, await machineMirrors(), out, log);
  },
};
