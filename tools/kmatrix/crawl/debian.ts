/**
 * `kmatrix crawl debian`: reads the archive's Packages indexes (no apt, no .deb downloads) and lists
 * every kernel ABI × flavour with the exact header packages it needs and their SHA256 and size.
 */
import { execa } from 'execa';
import { parseDepends, parseStanzas, type Stanza } from './deb822.ts';
import type { Mirrors } from './mirror.ts';
import { fetchBytes } from '../net/fetch.ts';
import { KmatrixError } from '../errors.ts';
import type { HeaderPackage, KernelEntry } from '../kernels/schema.ts';
import { compareVersions } from '../kernels/version.ts';
import { debianArch, type Arch } from '../matrix/names.ts';

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

interface IndexedPackage {
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

export async function fetchIndex(
  mirrors: Mirrors,
  ref: SuiteRef,
  arch: Arch,
  log: (line: string) => void,
): Promise<IndexedPackage[]> {
  const baseUrl = ref.security ? mirrors.security : mirrors.archive;
  const url = `${baseUrl}/dists/${ref.suite}/main/binary-${debianArch[arch]}/Packages.xz`;
  log(`fetching ${url}`);
  const data = await fetchBytes(url, {
    stage: 'crawl',
    onRetry: (n, why) => log(`  retry ${n} of ${url}: ${why}`),
  });
  const text = await xzDecompress(data, url);
  const stanzas = parseStanzas(text, (first) => /^Package: linux-(headers|kbuild)-/.test(first));
  log(`  ${ref.suite}: ${stanzas.length} linux-headers/kbuild packages (${(data.length / 1e6).toFixed(1)} MB index)`);
  return stanzas.map((stanza) => ({ stanza, baseUrl }));
}

function toHeaderPackage(role: HeaderPackage['role'], p: IndexedPackage): HeaderPackage {
  const s = p.stanza;
  if (!s.Package || !s.Version || !s.Filename || !s.SHA256 || !s.Size) {
    throw new KmatrixError(`index stanza for ${s.Package ?? '(unnamed)'} lacks Filename, SHA256 or Size`, { stage: 'crawl' });
  }
  return { role, name: s.Package, version: s.Version, url: `${p.baseUrl}/${s.Filename}`, sha256: s.SHA256, size: Number(s.Size) };
}

/**
 * Kernels are found from the flavour packages themselves: `linux-headers-<abi>-<flavour>` depends
 * on `linux-headers-<abi>-common[-rt] (= v)` and on linux-kbuild: `linux-kbuild-6.1 (>= v)` on 6.1,
 * unversioned `linux-kbuild-6.12.57+deb12` on 6.12. The common package is pinned exactly; for
 * kbuild the index only holds the newest version of a name, which is the one apt would install. Meta packages (linux-headers-amd64) have no pin.
 */
export function kernelsFromIndex(packages: IndexedPackage[], distro: string, arch: Arch): KernelEntry[] {
  const byName = new Map<string, IndexedPackage[]>();
  for (const p of packages) {
    const list = byName.get(p.stanza.Package!) ?? [];
    list.push(p);
    byName.set(p.stanza.Package!, list);
  }
  const satisfying = (name: string, op: string | undefined, version: string | undefined): IndexedPackage | undefined =>
    (byName.get(name) ?? [])
      .filter((c) => {
        if (!op || !version) return true;
        const d = compareVersions(c.stanza.Version!, version);
        return op === '=' ? d === 0 : op === '>=' ? d >= 0 : false;
      })
      .sort((a, b) => compareVersions(b.stanza.Version!, a.stanza.Version!))[0];

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
    const commonPkg = satisfying(common.name, common.op, common.version);
    const kbuildPkg = satisfying(kbuild.name, kbuild.op, kbuild.version);
    if (!commonPkg || !kbuildPkg) continue; // a half-published ABI: its dependencies are not in the index yet
    const kernelrelease = `${abi}-${flavour}`;
    const packagesOfKernel = [toHeaderPackage('flavour', p), toHeaderPackage('common', commonPkg), toHeaderPackage('kbuild', kbuildPkg)];
    const previous = entries.get(kernelrelease);
    if (previous && compareVersions(previous.kmatrix!.packageVersion, s.Version!) > 0) continue;
    entries.set(kernelrelease, {
      kernelversion: '1',
      kernelrelease,
      target: 'debian',
      headers: packagesOfKernel.map((h) => h.url).sort(),
      kmatrix: { distro, arch, abi, flavour, packageVersion: s.Version!, packages: packagesOfKernel },
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

export async function crawlDebian(
  mirrors: Mirrors,
  release: string,
  arch: Arch,
  log: (line: string) => void,
): Promise<KernelEntry[]> {
  const packages: IndexedPackage[] = [];
  for (const ref of suitesOf(release)) packages.push(...(await fetchIndex(mirrors, ref, arch, log)));
  const kernels = kernelsFromIndex(packages, `debian-${release}`, arch);
  if (kernels.length === 0) {
    throw new KmatrixError(`no kernel header packages found for debian ${release} ${arch}`, {
      stage: 'crawl',
      remedy: `check that the mirror carries ${release} (${mirrors.archive}/dists/${release}/)`,
    });
  }
  return kernels;
}
