/**
 * Ubuntu's archive: the same signed dists/<suite>/InRelease → Packages.xz chain as Debian's
 * (crawl.ts), with Ubuntu's hosts and package layout.
 *
 * - amd64 from the main archive and its security archive; arm64 (and its security updates) from
 *   the ports archive. Overrides: KMATRIX_UBUNTU_MIRROR, KMATRIX_UBUNTU_SECURITY_MIRROR,
 *   KMATRIX_UBUNTU_PORTS_MIRROR; keyring KMATRIX_UBUNTU_KEYRING (Debian does not ship Ubuntu's).
 * - A kernel is linux-headers-<abi>-<flavour> (its arch: the .config, Module.symvers, generated
 *   headers and the host programs, built for that arch) plus the arch-independent tree it
 *   depends on, exactly pinned: linux-headers-<abi> for generic kernels,
 *   linux-<flavour>-headers-<abi> for derivatives (aws, azure, gcp, …). No separate kbuild package.
 * - The kernel itself: linux-image-unsigned-<abi>-<flavour>, same version.
 */
import { existsSync } from 'node:fs';
import { KmatrixError } from '../../../core/errors.ts';
import type { KernelEntry } from '../../../model/kernel-list.ts';
import type { Arch } from '../../../model/names.ts';
import { compareVersions } from '../../../model/version.ts';
import { debianArch } from '../arch.ts';
import { parseDepends } from './deb822.ts';
import type { Mirrors } from './mirrors.ts';
import {
  byName,
  compareEntries,
  type CrawlMemo,
  type Dep,
  fetchIndex,
  type IndexedPackage,
  pinnedOf,
  satisfying,
  suitesOf,
  toHeaderPackage,
} from './crawl.ts';

const strip = (uri: string) => uri.replace(/\/+$/, '');

/** Where an arch's Ubuntu packages are: the main archive for amd64, ports for everything else. */
export function ubuntuMirrors(arch: Arch, env: NodeJS.ProcessEnv = process.env): Mirrors {
  if (arch === 'x86_64')
    return {
      archive: strip(env.KMATRIX_UBUNTU_MIRROR ?? 'http://archive.ubuntu.com/ubuntu'),
      security: strip(env.KMATRIX_UBUNTU_SECURITY_MIRROR ?? 'http://security.ubuntu.com/ubuntu'),
    };
  const ports = strip(env.KMATRIX_UBUNTU_PORTS_MIRROR ?? 'http://ports.ubuntu.com/ubuntu-ports');
  return { archive: ports, security: ports };
}

/** Ubuntu's archive key: KMATRIX_UBUNTU_KEYRING, else where Ubuntu's ubuntu-keyring installs it. */
export function ubuntuKeyring(env: NodeJS.ProcessEnv = process.env): string {
  const keyring = env.KMATRIX_UBUNTU_KEYRING ?? '/usr/share/keyrings/ubuntu-archive-keyring.gpg';
  if (!existsSync(keyring)) {
    throw new KmatrixError(`no Ubuntu archive keyring at ${keyring} to check the archive's signatures`, {
      stage: 'crawl',
      remedy:
        "set KMATRIX_UBUNTU_KEYRING to a keyring with Ubuntu's archive keys (ubuntu-archive-keyring.gpg from Ubuntu's ubuntu-keyring package)",
    });
  }
  return keyring;
}

/** The tree a flavour package depends on (versioned or not): linux-headers-<abi>, linux-<x>-headers-<abi> or linux-<x>-<series>-headers-<abi>. */
function commonOf(deps: Dep[]): { dep: Dep; abi: string } | undefined {
  for (const d of deps) {
    const m = d.name.match(/^linux-(?:[a-z0-9.]+-)*headers-(\d+\.\d+\.\d+-\d+)$/);
    if (m) return { dep: d, abi: m[1]! };
  }
  return undefined;
}

export function ubuntuKernelsFromIndex(packages: IndexedPackage[], distro: string, arch: Arch): KernelEntry[] {
  const index = byName(packages);
  const entries = new Map<string, KernelEntry>();
  for (const p of packages) {
    const s = p.stanza;
    if (s.Architecture !== debianArch[arch] || !s.Package?.startsWith('linux-headers-')) continue;
    const common = commonOf(parseDepends(s.Depends));
    const prefix = common && `linux-headers-${common.abi}-`;
    if (!common || !prefix || !s.Package.startsWith(prefix)) continue; // meta packages (linux-headers-generic)
    // Ubuntu's flavour packages name the shared tree without a version: it is the same upload.
    const commonPkg = satisfying(index, { ...common.dep, op: '=', version: s.Version! } as Dep, debianArch[arch]);
    if (!commonPkg) continue; // a half-published ABI
    const flavour = s.Package.slice(prefix.length);
    const kernelrelease = `${common.abi}-${flavour}`;
    const previous = entries.get(kernelrelease);
    if (previous && compareVersions(previous.kmatrix!.packageVersion, s.Version!) > 0) continue;
    const packagesOfKernel = [toHeaderPackage('flavour', p), toHeaderPackage('common', commonPkg)];
    const imageOf = satisfying(
      index,
      { name: `linux-image-unsigned-${kernelrelease}`, op: '=', version: s.Version! } as Dep,
      debianArch[arch],
    );
    entries.set(kernelrelease, {
      // uname -v's build number: 5.4.0-136.153 → 153, a backport's 6.8.0-40.40~22.04.3 → 40~22.04.3.
      kernelversion: s.Version!.replace(/^[^-]+-\d+\./, ''),
      kernelrelease,
      target: `ubuntu-${flavour.split('-')[0]}`,
      headers: packagesOfKernel.map((h) => h.url).sort(),
      kmatrix: {
        distro,
        arch,
        abi: common.abi,
        flavour,
        packageVersion: s.Version!,
        packages: packagesOfKernel,
        ...(imageOf ? { image: pinnedOf(imageOf) } : {}),
      },
    });
  }
  return [...entries.values()].sort(compareEntries);
}

/** Crawls one Ubuntu release for one arch (codename: jammy, noble). */
export async function crawlUbuntu(
  release: string,
  arch: Arch,
  log: (line: string) => void,
  memo: CrawlMemo,
  distro: string,
): Promise<KernelEntry[]> {
  const mirrors = ubuntuMirrors(arch);
  const keyring = ubuntuKeyring();
  const packages: IndexedPackage[] = [];
  for (const ref of suitesOf(release)) {
    const key = `${mirrors.archive} ${ref.suite}/${arch}`;
    packages.push(...(await memo.indexes.run(key, () => fetchIndex(mirrors, ref, arch, log, memo.releases, keyring))));
  }
  const kernels = ubuntuKernelsFromIndex(packages, distro, arch);
  if (kernels.length === 0) {
    throw new KmatrixError(`no kernel header packages found for ubuntu ${release} ${arch}`, {
      stage: 'crawl',
      remedy: `check that the mirror carries ${release} (${mirrors.archive}/dists/${release}/)`,
    });
  }
  return kernels;
}
