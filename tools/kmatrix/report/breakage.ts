/**
 * The breakage window: a driver maintainer's first question after a nightly run — from which
 * kernel on does my driver break, and why? For each driver × distro family × arch, the cells in
 * kernel version order (model/version.ts) give:
 *   - the range that works: from the lowest kernel whose build succeeded and whose boot test,
 *     where one ran, loaded the modules, up through the kernels that work without a break (and
 *     how many of them were boot-tested);
 *   - the first kernel that fails above that range — where the driver breaks — with its first
 *     error (the compiler's, or the boot verdict); with nothing failing above it, the lowest
 *     failing kernel below it;
 *   - the targets failing now that the last published state had published (built then).
 * Skipped, excluded and not-yet-built targets count neither way.
 */
import { compareVersions } from '../model/version.ts';
import type { Cell } from './cell.ts';

export interface BreakageWindow {
  driver: string;
  family: string;
  arch: string;
  /** Kernels that build (and load, where boot-tested), lowest to highest; absent when none does. */
  works?: { from: string; to: string; kernels: number; bootTested: number };
  /** The lowest kernel that fails, and why. */
  firstFailure?: { kernelrelease: string; target: string; stage: 'build' | 'boot'; error: string };
  failing: number;
  /** Failing now, published before (the last published state had a build of it). */
  newlyFailing: string[];
}

const LOADS = 'loads';
const UNTESTED = new Set(['gap', 'error']);

type Verdict = { works: true; booted: boolean } | { works: false; stage: 'build' | 'boot'; error: string } | undefined;

function verdict(c: Cell): Verdict {
  if (c.status === 'failed') return { works: false, stage: 'build', error: c.detail ?? 'the build failed' };
  if (c.status !== 'built' && c.status !== 'cached') return undefined;
  if (!c.boot || UNTESTED.has(c.boot.status)) return { works: true, booted: false };
  if (c.boot.status === LOADS) return { works: true, booted: true };
  return { works: false, stage: 'boot', error: `${c.boot.status}: ${c.boot.message}` };
}

export function breakageWindows(cells: readonly Cell[], published: ReadonlySet<string>): BreakageWindow[] {
  const groups = new Map<string, Cell[]>();
  for (const c of cells) {
    const key = [c.driver, c.family, c.arch].join('\0');
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const windows: BreakageWindow[] = [];
  for (const [key, group] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [driver, family, arch] = key.split('\0') as [string, string, string];
    const sorted = [...group].sort(
      (a, b) => compareVersions(a.kernelrelease, b.kernelrelease) || a.distro.localeCompare(b.distro),
    );
    const judged = sorted.map((c) => ({ c, v: verdict(c) })).filter((x) => x.v !== undefined);
    const bad = judged.filter((x) => !x.v!.works);
    // The unbroken run of working kernels from the lowest one; the break is the failure after it.
    const start = judged.findIndex((x) => x.v!.works);
    const end = start < 0 ? -1 : judged.findIndex((x, i) => i > start && !x.v!.works);
    const good = start < 0 ? [] : judged.slice(start, end < 0 ? undefined : end);
    const window: BreakageWindow = { driver, family, arch, failing: bad.length, newlyFailing: [] };
    if (good.length > 0)
      window.works = {
        from: good[0]!.c.kernelrelease,
        to: good.at(-1)!.c.kernelrelease,
        kernels: good.length,
        bootTested: good.filter((x) => x.v!.works && x.v!.booted).length,
      };
    const first = end >= 0 ? judged[end] : bad[0];
    if (first && !first.v!.works)
      window.firstFailure = {
        kernelrelease: first.c.kernelrelease,
        target: first.c.target,
        stage: first.v!.stage,
        error: first.v!.error,
      };
    window.newlyFailing = bad.map((x) => x.c.target).filter((t) => published.has(t));
    if (window.works || window.firstFailure) windows.push(window);
  }
  return windows;
}
