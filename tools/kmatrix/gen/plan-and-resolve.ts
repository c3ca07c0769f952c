/**
 * Plan, then pin every package's bytes — and when no mirror serves a kernel's headers, plan again
 * without it. A kernel-crawler list says nothing about what mirrors still serve, so its newest
 * entry may be dead; marking that kernel's packages unavailable lets a rule's `latest` fall back
 * to the newest kernel that can be built, exactly as it does for the gaps a crawl finds up front.
 * One dead entry costs only itself, never the rule's whole target.
 */
import type { HeaderStore, Unavailable } from '../packages/store.ts';
import { markUnavailable, packageLabel, type ListedKernel } from '../model/kernel-list.ts';
import type { Plan, Skipped } from './plan.ts';
import { resolveTargets, type KnownDigests, type Resolved } from './resolve.ts';

function markUnserved(kernels: ListedKernel[], unserved: Set<string>): number {
  let marked = 0;
  for (const k of kernels) {
    for (const p of k.kmatrix.packages) if (unserved.has(p.url) && markUnavailable(k, packageLabel(p))) marked++;
  }
  return marked;
}

/**
 * `earlier`: what an earlier call reported, kept (its kernels are marked unavailable by now);
 * `failed`: URLs no mirror served, shared across calls so each is asked once.
 */
export async function planAndResolve(
  kernels: ListedKernel[],
  plan: (kernels: ListedKernel[]) => Plan,
  known: KnownDigests,
  store: HeaderStore,
  earlier: Skipped[] = [],
  failed: Map<string, Unavailable> = new Map(),
): Promise<{ plan: Plan; resolved: Resolved }> {
  let planned = plan(kernels);
  let resolved = await resolveTargets(planned.targets, known, store, failed);
  // What resolution reported (with each URL's reason) is said once, whatever later rounds do.
  const reported = [...earlier, ...resolved.skipped];
  // Each round marks at least one more kernel unavailable, so there are never more rounds than
  // kernels; each resolves only what it newly selected (the rest is known by now).
  for (let round = 1; round <= kernels.length && markUnserved(kernels, resolved.unserved) > 0; round++) {
    planned = plan(kernels);
    resolved = await resolveTargets(planned.targets, known, store, failed);
    reported.push(...resolved.skipped);
  }
  // The re-plan reports those kernels again as mirror gaps: resolution already said why.
  const said = new Set(reported.map((s) => s.kernel));
  planned = { ...planned, skipped: planned.skipped.filter((s) => !s.kernel || !said.has(s.kernel)) };
  const seen = new Set<string>();
  const skipped = reported.filter((s) => {
    if (seen.has(s.what)) return false;
    seen.add(s.what);
    return true;
  });
  return { plan: planned, resolved: { ...resolved, skipped } };
}
