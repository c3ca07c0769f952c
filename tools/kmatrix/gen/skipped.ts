/**
 * Kernels gen leaves out, summarised for people: a real kernel list repeats one reason many times
 * (every flavour of an ABI whose -common package is gone; a kernelconfigdata-only distro listed per
 * release), so each reason is shown once with its count, and the total is counted per distro.
 */
import { familyNames } from '../distros/registry.ts';
import type { Skipped } from './plan.ts';

export interface SkipGroup {
  /** The shared reason (Skipped.kind, else why) */
  kind: string;
  /** Each entry with its full reason and how often it was listed, in first-seen order */
  entries: { what: string; why: string; times: number }[];
  count: number;
}

export function groupSkipped(skipped: Skipped[]): SkipGroup[] {
  const groups = new Map<string, SkipGroup>();
  for (const s of skipped) {
    const kind = s.kind ?? s.why;
    const g = groups.get(kind) ?? { kind, entries: [], count: 0 };
    const entry = g.entries.find((e) => e.what === s.what && e.why === s.why);
    if (entry) entry.times++;
    else g.entries.push({ what: s.what, why: s.why, times: 1 });
    g.count++;
    groups.set(kind, g);
  }
  return [...groups.values()];
}

/**
 * Skipped kernels per distro, most first: a kernel skipped for several drivers counts once;
 * entries without a distro count as "other".
 */
export function skippedPerDistro(skipped: Skipped[], unsupported: Map<string, number> = new Map()): [string, number][] {
  const counts = new Map(unsupported);
  const seen = new Set<string>();
  for (const s of skipped) {
    const distro = s.distro ?? 'other';
    const id = `${distro} ${s.kernel ?? s.what}`;
    if (seen.has(id)) continue;
    seen.add(id);
    counts.set(distro, (counts.get(distro) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

const label = (e: { what: string; times: number }) => (e.times > 1 ? `${e.what} ×${e.times}` : e.what);

/** One line per reason (every entry with `verbose`), then the per-distro count. */
export function renderSkipped(skipped: Skipped[], unsupported: Map<string, number>, verbose: boolean): string[] {
  const lines: string[] = [];
  for (const g of groupSkipped(skipped)) {
    if (verbose || g.entries.length === 1) {
      for (const e of g.entries) lines.push(`skipped ${label(e)}: ${e.why}`);
      continue;
    }
    const shown = g.entries.slice(0, 3).map(label);
    const more = g.entries.length > 3 ? `, and ${g.entries.length - 3} more` : '';
    lines.push(`skipped ${g.count} entries (${shown.join(', ')}${more}): ${g.kind}`);
  }
  for (const [distro, n] of unsupported) {
    lines.push(
      `skipped ${n} ${distro} kernel${n === 1 ? '' : 's'}: no distro family of kmatrix reads ${distro} kernels (it has: ${familyNames().join(', ')}; a family is a folder under tools/kmatrix/distros/)`,
    );
  }
  const perDistro = skippedPerDistro(skipped, unsupported);
  if (perDistro.length > 0)
    lines.push(
      `skipped per distro: ${perDistro.map(([d, n]) => `${d} ${n}`).join(', ')}${verbose || skipped.length === 0 ? '' : ' (--verbose lists every entry)'}`,
    );
  return lines;
}
