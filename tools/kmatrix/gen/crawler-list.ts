/**
 * Reading falcosecurity/kernel-crawler output. Two formats exist in the wild: the 2022 one (display
 * names as keys — `AmazonLinux2`, `Oracle7` — and integer `kernelversion`) and the current one
 * (os-release IDs as keys, strings). A distro whose crawl failed is simply absent, so absence is
 * never read as removal (see matrix/generate.ts).
 */
import type { z } from 'zod';
import type { KernelEntry, ListedKernel } from '../model/kernel-list.ts';
import { debianKernel } from '../distros/debian/crawler-entry.ts';
import type { Mirrors } from '../distros/debian/mirrors.ts';

/** Current keys (kernel_crawler/crawler.py DISTROS) and what the 2022 display names became. */
const CURRENT_KEYS = [
  'alinux', 'almalinux', 'amazonlinux', 'amazonlinux2', 'amazonlinux2022', 'amazonlinux2023', 'centos', 'fedora', 'ol',
  'photon', 'rocky', 'opensuse', 'debian', 'ubuntu', 'flatcar', 'minikube', 'redhat', 'arch', 'bottlerocket', 'talos',
] as const;
const LEGACY_KEYS: Record<string, string> = {
  AmazonLinux: 'amazonlinux',
  AmazonLinux2: 'amazonlinux2',
  AmazonLinux2022: 'amazonlinux2022',
  AmazonLinux2023: 'amazonlinux2023',
  CentOS: 'centos',
  Fedora: 'fedora',
  Oracle6: 'ol',
  Oracle7: 'ol',
  Oracle8: 'ol',
  PhotonOS: 'photon',
  Debian: 'debian',
  Ubuntu: 'ubuntu',
  Flatcar: 'flatcar',
  Minikube: 'minikube',
  Rocky: 'rocky',
  AlmaLinux: 'almalinux',
  BottleRocket: 'bottlerocket',
  ArchLinux: 'arch',
  OpenSUSE: 'opensuse',
  RedHat: 'redhat',
};

/** The os-release ID of a top-level key, or undefined if we do not know the distro. */
export function crawlerDistro(key: string): string | undefined {
  if ((CURRENT_KEYS as readonly string[]).includes(key)) return key;
  return LEGACY_KEYS[key];
}

type EntryKey = Pick<KernelEntry, 'target' | 'kernelrelease' | 'kernelversion'>;

/** Cross-entry rules zod cannot say per field: known distro keys, no duplicate entries. */
export function checkCrawlerList(list: Record<string, EntryKey[]>, ctx: z.RefinementCtx): void {
  for (const [key, entries] of Object.entries(list)) {
    if (!crawlerDistro(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `unknown distro "${key}" (kernel-crawler keys are os-release IDs such as ${CURRENT_KEYS.slice(0, 6).join(', ')}, … or the 2022 names such as AmazonLinux2)`,
      });
      continue;
    }
    const seen = new Map<string, number>();
    entries.forEach((e, i) => {
      const id = `${e.target} ${e.kernelrelease} ${e.kernelversion}`;
      const first = seen.get(id);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: [key, i], message: `duplicate entry: target ${e.target}, kernelrelease ${e.kernelrelease}, kernelversion ${e.kernelversion} is already ${key}[${first}]` });
      } else seen.set(id, i);
    });
  }
}

export interface Unusable {
  what: string;
  why: string;
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

/** Whether a list has entries only their URLs describe (which need this machine's mirrors). */
export function hasCrawlerEntries(list: Record<string, KernelEntry[]>): boolean {
  return Object.values(list).some((entries) => entries.some((e) => !e.kmatrix));
}

/**
 * Every entry of a list as a kernel we can fetch, or a reason why not. Our own lists carry a
 * `kmatrix` block; crawler entries are interpreted from their header URLs.
 */
export function listedKernels(list: Record<string, KernelEntry[]>, mirrors: Mirrors | undefined): ListedKernels {
  const out: ListedKernels = { kernels: [], unusable: [], unsupported: new Map() };
  for (const [key, entries] of Object.entries(list)) {
    // gen keys lists as "<file>#<distro key>" so several files can name the same distro
    const name = key.replace(/^.*#/, '');
    const distro = crawlerDistro(name)!;
    for (const entry of entries) {
      if (entry.kmatrix) {
        out.kernels.push({ kernelrelease: entry.kernelrelease, kmatrix: entry.kmatrix });
        continue;
      }
      const what = `${name} ${entry.kernelrelease}`;
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
      if (distro !== 'debian') {
        out.unsupported.set(distro, (out.unsupported.get(distro) ?? 0) + 1);
        continue;
      }
      if (!mirrors) throw new Error('listedKernels: Debian crawler entries need the mirrors'); // gen detects them first
      // One odd entry (a URL with a malformed %-escape, say) costs only itself.
      let r: ReturnType<typeof debianKernel>;
      try {
        r = debianKernel(entry, mirrors);
      } catch (error) {
        r = { why: `cannot read its header URLs: ${(error as Error).message}` };
      }
      if ('why' in r) out.unusable.push({ what, distro, why: r.why });
      else out.kernels.push(r);
    }
  }
  return out;
}
