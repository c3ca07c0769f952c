/**
 * Digests from the archives' own indexes for kernel-crawler entries, which list only URLs.
 * `kmatrix crawl` records what each archive's signed index says of every kernel package
 * (kernels/<distro>-<arch>.json); a kernel-crawler entry naming the same file is pinned by that,
 * with no download and its gcc known from the same index. Only what no crawled index lists is
 * downloaded once and trusted on first download (gen/resolve.ts).
 *
 * A package file is matched by its distro and file name: an archive never serves two different
 * files under one pool name (Debian's dak and the RPM tools both refuse to reuse one), but two
 * archives can (AlmaLinux and Rocky name their kernel-devel rpms alike), so never across distros.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadKernelList, packageLabel, type ListedKernel, type ListedPackage } from '../model/kernel-list.ts';
import { familyOwning } from '../distros/registry.ts';

interface Indexed {
  sha256: string;
  size: number;
  /** Where the archive serves it (checked by the crawl's HEAD), tried after the list's own URLs. */
  url: string;
  gcc?: string;
}

/** "<distro> <file name>", or undefined for a URL whose file name does not decode. */
function keyOf(distro: string, url: string): string | undefined {
  try {
    return `${distro} ${decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '')}`;
  } catch {
    return undefined;
  }
}

/** What the crawled kernel lists in `<root>/kernels` say of each package file, by distro and file name. */
export async function crawledIndex(root: string): Promise<Map<string, Indexed>> {
  const out = new Map<string, Indexed>();
  const files = await readdir(join(root, 'kernels')).catch(() => [] as string[]);
  for (const f of files.filter((x) => x.endsWith('.json')).sort()) {
    // A list that does not load is gen's to report when it is asked for; here it is only not a source.
    const list = await loadKernelList(join(root, 'kernels', f)).catch(() => undefined);
    for (const entry of Object.values(list ?? {}).flat()) {
      const k = entry.kmatrix;
      const family = k && familyOwning([...new Set(k.packages.map((p) => p.role))]);
      if (!k || !family) continue; // roles no family has: gen reports the entry where it is listed
      // The kernel's gcc goes with the package holding its .config (its own), never a shared one.
      const holder = family.configPackage(k.packages);
      const gone = new Set(k.unavailable ?? []);
      const named = [
        ...k.packages.map((p) => ({ p, label: packageLabel(p) })),
        ...(k.image ? [{ p: k.image, label: k.image.name }] : []),
      ];
      for (const { p, label } of named) {
        // A file the mirror did not serve at crawl time pins nothing.
        if (!p.sha256 || !p.size || p.pinnedBy || gone.has(label)) continue;
        const gcc = p === holder && k.gcc ? { gcc: k.gcc } : {};
        const key = keyOf(k.distro, p.url);
        if (key) out.set(key, { sha256: p.sha256, size: p.size, url: p.url, ...gcc });
      }
    }
  }
  return out;
}

/**
 * Fills in each unpinned package of `kernels` that a crawled index lists (and the kernel's gcc from
 * it, when the list did not say); returns how many packages were pinned this way.
 */
export function pinFromIndex(kernels: ListedKernel[], index: Map<string, Indexed>): number {
  let pinned = 0;
  const pin = <P extends Pick<ListedPackage, 'url' | 'alternatives' | 'sha256' | 'size'>>(
    p: P,
    distro: string,
  ): Indexed | undefined => {
    if (p.sha256) return undefined;
    const hit = [p.url, ...(p.alternatives ?? [])].map((u) => index.get(keyOf(distro, u) ?? '')).find(Boolean);
    if (!hit) return undefined;
    p.sha256 = hit.sha256;
    p.size = hit.size;
    if (![p.url, ...(p.alternatives ?? [])].includes(hit.url)) p.alternatives = [...(p.alternatives ?? []), hit.url];
    pinned++;
    return hit;
  };
  for (const k of kernels) {
    for (const p of k.kmatrix.packages) {
      const hit = pin(p, k.kmatrix.distro);
      if (hit?.gcc && !k.kmatrix.gcc) k.kmatrix.gcc = hit.gcc;
    }
    if (k.kmatrix.image) pin(k.kmatrix.image, k.kmatrix.distro);
  }
  return pinned;
}
