/**
 * `kmatrix crawl deb`: reads the archive's Packages indexes (no apt, no .deb downloads) and lists
 * every kernel ABI × flavour with the exact header packages it needs and their SHA256 and size.
 * Each index is checked against its suite's Release, whose signature gpgv checks against the
 * archive keyring (release.ts): the SHA256s the lists record are the archive's own.
 */
import { execa } from 'execa';
import { parseDepends, parseStanzas, type Stanza } from './deb822.ts';
import type { Mirrors } from './mirrors.ts';
import type { KeyedRuns } from '../../../core/pool.ts';
import { KmatrixError } from '../../../core/errors.ts';
import type { HeaderPackage, ImagePackage, KernelEntry } from '../../../model/kernel-list.ts';
import { compareVersions } from '../../../model/version.ts';
import type { Arch } from '../../../model/names.ts';
import { debianArch } from '../arch.ts';
import { fetchListed, keyringOf, signedRelease, type SignedRelease } from './release.ts';

export interface SuiteRef {
  suite: string;
  security: boolean;
}

/** Debian release → the suites that carry its kernels (main, point-release updates, security). */
export function suitesOf(release: string): SuiteRef[] {
  return [
    { suite: release, security: false },
    { suite: `${release}-updates`, security: false },
    { suite: `${release}-security`, security: true },
  ];
}

export interface IndexedPackage {
  stanza: Stanza;
  baseUrl: string;
}

async function xzDecompress(data: Buffer, what: string): Promise<string> {
  try {
    const { stdout } = await execa('xz', ['-dc'], { input: data, maxBuffer: 1024 * 1024 * 1024, encoding: 'utf8' });
    return stdout;
  } catch (error) {
    const missing = (error as { code?: string }).code === 'ENOENT';
    throw new KmatrixError(missing ? 'the `xz` tool is not installed' : `cannot decompress ${what}`, {
      stage: 'crawl',
      cause: error,
      remedy: missing ? 'install it: apt-get install -y xz-utils' : 'the download may be corrupt; run the crawl again',
    });
  }
}

/** What one crawl fetches once: each suite's signed Release, each suite × arch index. */
export interface CrawlMemo {
  releases: KeyedRuns<SignedRelease>;
  indexes: KeyedRuns<IndexedPackage[]>;
}

export async function fetchIndex(
  mirrors: Mirrors,
  ref: SuiteRef,
  arch: Arch,
  log: (line: string) => void,
  releases: CrawlMemo['releases'],
  keyring: string = keyringOf(),
): Promise<IndexedPackage[]> {
  const baseUrl = ref.security ? mirrors.security : mirrors.archive;
  const release = await releases.run(`${baseUrl} ${ref.suite}`, () => signedRelease(baseUrl, ref.suite, keyring, log));
  const path = `main/binary-${debianArch[arch]}/Packages.xz`;
  const { url, data } = await fetchListed(release, path, log);
  const text = await xzDecompress(data, url);
  const stanzas = parseStanzas(text, (first) =>
    /^Package: linux-(?:[a-z0-9.-]+-)?(?:headers|kbuild|image)-/.test(first),
  );
  log(
    `  ${ref.suite} ${debianArch[arch]}: ${stanzas.length} linux-headers/kbuild/image packages (${(data.length / 1e6).toFixed(1)} MB index)`,
  );
  return stanzas.map((stanza) => ({ stanza, baseUrl }));
}

/** A package as the index pins it: name, version, URL, SHA256 and size. */
export function pinnedOf(p: IndexedPackage): ImagePackage {
  const s = p.stanza;
  if (!s.Package || !s.Version || !s.Filename || !s.SHA256 || !s.Size) {
    throw new KmatrixError(`index stanza for ${s.Package ?? '(unnamed)'} lacks Filename, SHA256 or Size`, {
      stage: 'crawl',
    });
  }
  return {
    name: s.Package,
    version: s.Version,
    url: `${p.baseUrl}/${s.Filename}`,
    sha256: s.SHA256,
    size: Number(s.Size),
  };
}

export function toHeaderPackage(role: HeaderPackage['role'], p: IndexedPackage, hostArch?: Arch): HeaderPackage {
  const pkg: HeaderPackage = { role, ...pinnedOf(p) };
  if (hostArch) pkg.hostArch = hostArch;
  return pkg;
}

export type Dep = ReturnType<typeof parseDepends>[number];

/** The newest package of a name that satisfies a Depends constraint, among those of one architecture. */
export function satisfying(
  index: Map<string, IndexedPackage[]>,
  dep: Dep,
  architecture: string,
): IndexedPackage | undefined {
  return (index.get(dep.name) ?? [])
    .filter((c) => {
      if (c.stanza.Architecture !== architecture && c.stanza.Architecture !== 'all') return false;
      if (!dep.op || !dep.version) return true;
      const d = compareVersions(c.stanza.Version!, dep.version);
      return dep.op === '=' ? d === 0 : dep.op === '>=' ? d >= 0 : false;
    })
    .sort((a, b) => compareVersions(b.stanza.Version!, a.stanza.Version!))[0];
}

export function byName(packages: IndexedPackage[]): Map<string, IndexedPackage[]> {
  const index = new Map<string, IndexedPackage[]>();
  for (const p of packages) {
    const list = index.get(p.stanza.Package!) ?? [];
    list.push(p);
    index.set(p.stanza.Package!, list);
  }
  return index;
}

/** The compiler a kernel was built with, from its headers' Depends: linux-compiler-gcc-12-x86 (6.1) or gcc-14 (6.12). */
export function gccFromDepends(deps: Dep[]): string | undefined {
  for (const d of deps) {
    const m = d.name.match(/^(?:linux-compiler-)?gcc-(\d+)(?:-|$)/);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Kernels are found from the flavour packages themselves: `linux-headers-<abi>-<flavour>` depends
 * on `linux-headers-<abi>-common[-rt] (= v)` and on linux-kbuild: `linux-kbuild-6.1 (>= v)` on 6.1,
 * unversioned `linux-kbuild-6.12.57+deb12` on 6.12. The common package is pinned exactly; for
 * kbuild the index only holds the newest version of a name, which is the one apt would install.
 * Meta packages (linux-headers-amd64) have no pin and are skipped.
 *
 * arm64 header packages carry no host programs usable on an amd64 runner, so an arm64 kernel
 * lists two kbuild packages: the amd64 one (cross builds; it is cross-capable) and the arm64 one
 * (a native arm64 runner). `hostPackages` is the amd64 index for that.
 */
export function kernelsFromIndex(
  packages: IndexedPackage[],
  distro: string,
  arch: Arch,
  hostPackages: IndexedPackage[] = arch === 'x86_64' ? packages : [],
): KernelEntry[] {
  const index = byName(packages);
  const hostIndex = byName(hostPackages);
  const entries = new Map<string, KernelEntry>();
  for (const p of packages) {
    const s = p.stanza;
    if (s.Architecture !== debianArch[arch] || !s.Package?.startsWith('linux-headers-')) continue;
    const deps = parseDepends(s.Depends);
    const common = deps.find((d) => /^linux-headers-.+-common(-rt)?$/.test(d.name) && d.op === '=');
    const kbuild = deps.find((d) => d.name.startsWith('linux-kbuild-'));
    if (!common || !kbuild) continue;
    const abi = common.name.replace(/^linux-headers-/, '').replace(/-common(-rt)?$/, '');
    const prefix = `linux-headers-${abi}-`;
    if (!s.Package.startsWith(prefix)) continue;
    const flavour = s.Package.slice(prefix.length);
    const commonPkg = satisfying(index, common, debianArch[arch]);
    const kbuilds: HeaderPackage[] = [];
    const crossKbuild = satisfying(hostIndex, kbuild, debianArch.x86_64);
    if (crossKbuild) kbuilds.push(toHeaderPackage('kbuild', crossKbuild, 'x86_64'));
    if (arch !== 'x86_64') {
      const nativeKbuild = satisfying(index, kbuild, debianArch[arch]);
      if (nativeKbuild) kbuilds.push(toHeaderPackage('kbuild', nativeKbuild, arch));
    }
    if (!commonPkg || kbuilds.length === 0) continue; // a half-published ABI: its dependencies are not in the index yet
    const kernelrelease = `${abi}-${flavour}`;
    const packagesOfKernel = [toHeaderPackage('flavour', p), toHeaderPackage('common', commonPkg), ...kbuilds];
    const previous = entries.get(kernelrelease);
    if (previous && compareVersions(previous.kmatrix!.packageVersion, s.Version!) > 0) continue;
    const gcc = gccFromDepends(deps);
    // The unsigned image is the very kernel the signed one wraps; same source version as the headers.
    const imageOf = satisfying(
      index,
      { name: `linux-image-${kernelrelease}-unsigned`, op: '=', version: s.Version! } as Dep,
      debianArch[arch],
    );
    const image = imageOf ? pinnedOf(imageOf) : undefined;
    entries.set(kernelrelease, {
      kernelversion: '1',
      kernelrelease,
      target: 'debian',
      headers: packagesOfKernel.map((h) => h.url).sort(),
      kmatrix: {
        distro,
        arch,
        abi,
        flavour,
        packageVersion: s.Version!,
        ...(gcc ? { gcc } : {}),
        packages: packagesOfKernel,
        ...(image ? { image } : {}),
      },
    });
  }
  return [...entries.values()].sort(compareEntries);
}

export function compareEntries(a: KernelEntry, b: KernelEntry): number {
  return (
    compareVersions(a.kmatrix?.abi ?? a.kernelrelease, b.kmatrix?.abi ?? b.kernelrelease) ||
    (a.kernelrelease < b.kernelrelease ? -1 : a.kernelrelease > b.kernelrelease ? 1 : 0)
  );
}

/** Crawls one release for one arch; indexes already fetched in this run are reused (the amd64 one serves arm64's kbuild). */
export async function crawlDebian(
  mirrors: Mirrors,
  release: string,
  arch: Arch,
  log: (line: string) => void,
  memo: CrawlMemo,
  distro: string,
): Promise<KernelEntry[]> {
  const indexOf = async (a: Arch): Promise<IndexedPackage[]> => {
    const all: IndexedPackage[] = [];
    for (const ref of suitesOf(release)) {
      const key = `${ref.suite}/${a}`;
      all.push(...(await memo.indexes.run(key, () => fetchIndex(mirrors, ref, a, log, memo.releases))));
    }
    return all;
  };
  const packages = await indexOf(arch);
  const hostPackages = arch === 'x86_64' ? packages : await indexOf('x86_64');
  const kernels = kernelsFromIndex(packages, distro, arch, hostPackages);
  if (kernels.length === 0) {
    throw new KmatrixError(`no kernel header packages found for debian ${release} ${arch}`, {
      stage: 'crawl',
      remedy: `check that the mirror carries ${release} (${mirrors.archive}/dists/${release}/)`,
    });
  }
  return kernels;
}
