/**
 * Reading falcosecurity/kernel-crawler output. Two formats exist in the wild: the 2022 one (display
 * names as keys — `AmazonLinux2`, `Oracle7` — and integer `kernelversion`) and the current one
 * (os-release IDs as keys, strings). A distro whose crawl failed is simply absent, so absence is
 * never read as removal (see gen/plan.ts).
 */
import { KeyedRuns } from '../core/pool.ts';
import { crawlerDistro, type KernelEntry, type ListedKernel } from '../model/kernel-list.ts';
import type { DistroOf } from '../model/policy.ts';
import type { CrawlerEntryReader, DistroFamily } from '../distros/family.ts';
import { familyOfCrawlerDistro, familyOwning } from '../distros/registry.ts';

export interface Unusable {
  what: string;
  why: string;
  /** The reason shared by every entry it hits, printed once with a count (default: why) */
  kind?: string;
  /** The list's distro (os-release ID) */
  distro: string;
}

export interface ListedKernels {
  kernels: ListedKernel[];
  /** Entries that name kernels we cannot build from, each with its reason. */
  unusable: Unusable[];
  /** Distros of the list we have no support for at all, with their entry counts (reported as one line each). */
  unsupported: Map<string, number>;
}

/**
 * Every entry of a list as a kernel we can fetch, or a reason why not. Our own lists carry a
 * `kmatrix` block; crawler entries are interpreted from their header URLs by their distro family.
 */
export async function listedKernels(list: Record<string, KernelEntry[]>, distroOf: DistroOf): Promise<ListedKernels> {
  const out: ListedKernels = { kernels: [], unusable: [], unsupported: new Map() };
  // A family's reader is made once (it may look up this machine's mirrors), and only if an entry needs it.
  const readers = new KeyedRuns<CrawlerEntryReader>({ remember: true });
  const readerOf = (family: DistroFamily) =>
    readers.run(family.name, () => family.crawlerEntries((release, os) => distroOf(family.name, release, os)));
  for (const [key, entries] of Object.entries(list)) {
    // gen keys lists as "<file>#<distro key>" so several files can name the same distro
    const name = key.replace(/^.*#/, '');
    // Our own lists may be filed under a family's key kernel-crawler does not know.
    const distro = crawlerDistro(name) ?? name;
    const family = familyOfCrawlerDistro(distro);
    const seen = new Map<string, number>();
    for (const [i, entry] of entries.entries()) {
      const what = `${name} ${entry.kernelrelease}`;
      // The same entry twice (real lists have them): the first one stands, the repeat is named.
      const id = `${entry.target} ${entry.kernelrelease} ${entry.kernelversion}`;
      const first = seen.get(id);
      if (first !== undefined) {
        out.unusable.push({
          what,
          distro,
          why: `a duplicate of ${name}[${first}] (same target, kernelrelease and kernelversion)`,
          kind: 'a duplicate of an earlier entry (same target, kernelrelease and kernelversion)',
        });
        continue;
      }
      seen.set(id, i);
      if (entry.kmatrix) {
        // A role no family has (a hand-edited list) costs only its entry.
        const roles = [...new Set(entry.kmatrix.packages.map((p) => p.role))];
        if (familyOwning(roles)) out.kernels.push({ kernelrelease: entry.kernelrelease, kmatrix: entry.kmatrix });
        else
          out.unusable.push({
            what,
            distro,
            why: `its header roles (${roles.join(', ')}) belong to no distro family of kmatrix`,
          });
        continue;
      }
      if (!entry.headers?.length) {
        out.unusable.push({
          what,
          distro,
          why: entry.kernelconfigdata
            ? 'unbuildable yet: the crawler gives only the kernel .config (kernelconfigdata), no header packages'
            : 'the entry lists no header packages',
        });
        continue;
      }
      if (!family) {
        out.unsupported.set(distro, (out.unsupported.get(distro) ?? 0) + 1);
        continue;
      }
      const read = await readerOf(family);
      // One odd entry (a URL with a malformed %-escape, say) costs only itself.
      let r: ReturnType<CrawlerEntryReader>;
      try {
        r = read(entry, distro);
      } catch (error) {
        r = { why: `cannot read its header URLs: ${(error as Error).message}` };
      }
      if ('why' in r) out.unusable.push({ what, distro, why: r.why, ...(r.kind ? { kind: r.kind } : {}) });
      else out.kernels.push(r);
    }
  }
  return out;
}
