/**
 * `kmatrix crawl` as a library: which distro × release × arch to crawl (from the policy, or as
 * asked), each family's archive crawled through its DistroFamily, and the mirror's gaps recorded.
 */
import { KeyedRuns } from '../core/pool.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { kernelEntry, type KernelEntry } from '../model/kernel-list.ts';
import type { Arch } from '../model/names.ts';
import { distroOfPolicy, impliedDistro, loadPolicy, type Policy } from '../model/policy.ts';
import type { ArchiveCrawl, DistroFamily, Log } from '../distros/family.ts';
import { FAMILIES, familyNamed, familyNames } from '../distros/registry.ts';
import { markUnavailable } from './availability.ts';

export interface CrawlJob {
  family: DistroFamily;
  /** The policy distro the kernels are filed under. */
  distro: string;
  /** The os-release ID of its kernels (the family's only one, or the policy distro's `distro`). */
  os: string;
  release: string;
  arch: Arch;
  /** The kernel list it writes by default. */
  file: string;
}

export interface CrawlSelection {
  /** Only this family's distros (default: every distro of the policy). */
  family?: string;
  /** These releases of `family`, whether the policy names them or not. */
  releases?: string[];
  /** The os-release ID of `releases`, for a family that serves several distros. */
  os?: string;
  /** Only these distros of the policy. */
  distros?: string[];
  /** Default: for each distro, every arch its matrix rules name. */
  archs?: Arch[];
}

/** The os-release ID a crawl of `family` is for: the one asked, or the family's only one. */
function osOf(family: DistroFamily, asked: string | undefined, field: string): string {
  if (asked && family.distros.includes(asked)) return asked;
  const implied = impliedDistro(family);
  if (!asked && implied) return implied;
  throw new KmatrixError(
    asked
      ? `family ${family.name} does not serve distro "${asked}"`
      : `family ${family.name} serves several distros: say which one`,
    { stage: 'usage', remedy: `set ${field} to one of: ${family.distros.join(', ')}` },
  );
}

/** The crawls a selection means, given the policy (if there is one). */
export async function crawlJobs(policyFile: string, want: CrawlSelection): Promise<CrawlJob[]> {
  const policy: Policy | undefined = existsSync(policyFile) ? await loadPolicy(policyFile, FAMILIES) : undefined;
  const family = want.family === undefined ? undefined : familyNamed(want.family);
  // Each distro's archs are the ones its own rules name (a distro no rule names: every rule's).
  const every = [...new Set(policy?.matrix.flatMap((r) => r.archs) ?? ['x86_64' as const])];
  const archsOf = (distro: string): Arch[] => {
    if (want.archs) return want.archs;
    const own = [...new Set(policy?.matrix.filter((r) => r.distro === distro).flatMap((r) => r.archs) ?? [])];
    return own.length > 0 ? own : every;
  };
  let distros: { family: DistroFamily; release: string; distro: string; os: string }[];
  if (want.releases) {
    if (!family)
      throw new KmatrixError('--release needs the family it is a release of', {
        stage: 'usage',
        remedy: `e.g. \`npx kmatrix crawl ${familyNames()[0]} --release bookworm\``,
      });
    const os = osOf(family, want.os, '--distro');
    const distroOf = policy ? distroOfPolicy(policy) : (_f: string, r: string, o?: string) => `${o}-${r}`;
    distros = want.releases.map((release) => ({ family, release, os, distro: distroOf(family.name, release, os) }));
  } else {
    if (!policy)
      throw new KmatrixError(`no ${policyFile} to say which distros to crawl`, {
        stage: 'usage',
        remedy: 'pass FAMILY --release R (see `npx kmatrix crawl --help`)',
      });
    distros = Object.entries(policy.distros)
      .filter(([name, d]) => (!family || d.family === family.name) && (!want.distros || want.distros.includes(name)))
      .map(([distro, d]) => {
        const family = familyNamed(d.family);
        return { family, release: d.release, distro, os: osOf(family, d.distro, `distros.${distro}.distro`) };
      })
      // `crawl deb --distro ubuntu`: the policy's Ubuntu distros only.
      .filter((d) => !want.os || d.os === want.os);
    if (want.os && distros.length === 0) {
      throw new KmatrixError(
        `the policy has no ${want.os} distro${family ? ` of family ${family.name}` : ''} to crawl`,
        {
          stage: 'usage',
          remedy: `add one to ${policyFile}, or name a release: \`npx kmatrix crawl FAMILY --distro ${want.os} --release R\``,
        },
      );
    }
  }
  return distros.flatMap((d) =>
    archsOf(d.distro).map((arch) => ({ ...d, arch, file: join('kernels', `${d.distro}-${arch}.json`) })),
  );
}

/**
 * What an archive's index says is read, not trusted: an entry that would not pass the kernel
 * list's schema (an odd version string, a path in a release) is left out and named, and costs
 * only itself.
 */
function valid(kernels: KernelEntry[], log: Log): KernelEntry[] {
  return kernels.filter((k) => {
    const result = kernelEntry.safeParse(k);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      log(`  left out ${k.kernelrelease}: ${issue.path.join('.')} ${issue.message}`);
    }
    return result.success;
  });
}

/**
 * Crawls each job's archive and hands its kernel list to `write` as soon as it is done (a crawl
 * of several distros keeps what it finished). With `check`, each package URL is HEAD-checked and
 * the ones the mirror does not serve are recorded in kmatrix.unavailable.
 */
export async function crawl(
  jobs: CrawlJob[],
  check: boolean,
  log: Log,
  write: (job: CrawlJob, list: Record<string, KernelEntry[]>) => Promise<void>,
): Promise<void> {
  const crawls = new KeyedRuns<ArchiveCrawl>({ remember: true });
  for (const job of jobs) {
    const archive = await crawls.run(job.family.name, () => job.family.crawl(log));
    const kernels = valid(await archive.kernels(job.release, job.arch, job.distro, job.os), log);
    if (check) await markUnavailable(kernels, log);
    await write(job, { [job.family.listKey(job.os, job.release)]: kernels });
  }
}
