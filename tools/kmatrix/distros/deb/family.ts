/**
 * Debian: kernels from the Debian archive (main, point-release updates, security), read through
 * the mirror this machine's apt uses; toolchains made by mmdebstrap, reproducibly.
 *
 * What a build asks (layout.ts) is imported here; reading the archive (archive/: crawling, crawler
 * entries, mirrors, toolchain root filesystems) is loaded only when asked for. A build never runs archive/, so
 * it is not a build input: editing the crawler rebuilds nothing (see compile/inputs.ts).
 */
import { KeyedRuns } from '../../core/pool.ts';
import type { DistroFamily } from '../family.ts';
import type { CrawlMemo } from './archive/crawl.ts';
import type { Mirrors } from './archive/mirrors.ts';
import { configPackage, headerMounts, kernelDir, missingHostTools, ROLES, signingTool } from './layout.ts';
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
  distros: ['debian'],
  defaultDistro: 'debian',
  listKey: () => 'debian',
  crawlerDistros: ['debian'],
  roles: ROLES,
  crawlHelp: `Packages indexes of <release>, <release>-updates and <release>-security (main),
from the mirror in /etc/apt/sources.list.d/ (override: KMATRIX_DEBIAN_MIRROR,
KMATRIX_DEBIAN_SECURITY_MIRROR), each checked against its suite's InRelease, whose signature
gpgv checks against debian-archive-keyring (override: KMATRIX_DEBIAN_KEYRING); arm64 kernels
list both the amd64 kbuild used to cross-compile and the arm64 one for native runners.`,

  async crawl(log) {
    const found = await machineMirrors();
    const { crawlDebian } = await import('./archive/crawl.ts');
    // The amd64 index also serves arm64's cross kbuild: one fetch per suite and arch for the whole
    // crawl, and one signed Release per suite.
    const memo: CrawlMemo = { releases: new KeyedRuns({ remember: true }), indexes: new KeyedRuns({ remember: true }) };
    return { kernels: (release, arch, distro) => crawlDebian(found, release, arch, log, memo, distro) };
  },
  async crawlerEntries(distroOf) {
    const found = await machineMirrors();
    const { debianKernel } = await import('./archive/crawler-entry.ts');
    return (entry) => debianKernel(entry, found, (codename) => distroOf(codename, 'debian'));
  },

  kernelDir,
  headerMounts,
  missingHostTools,
  configPackage,
  signingTool,

  // Named like the arch (amd64, arm64): not rt, not cloud.
  plainFlavour: (arch) => debianArch[arch],

  kernelImageFile: (kernelrelease) => `boot/vmlinuz-${kernelrelease}`,
  noImage: (kernelrelease, packageVersion) =>
    `the archive index lists no linux-image-${kernelrelease}-unsigned ${packageVersion}`,

  async toolchainRootfs(spec, out, log) {
    const { toolchainRootfs } = await import('./archive/toolchain-rootfs.ts');
    return toolchainRootfs(spec, await machineMirrors(), out, log);
  },
};
