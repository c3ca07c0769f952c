/**
 * Pins the bytes of every header package a planned target uses. Packages from `kmatrix crawl`
 * arrive with the archive index's SHA256; kernel-crawler lists only URLs, so those are downloaded
 * once (into the header store, where the build will find them), hashed, and the digest is written
 * into target.json — from then on a target's hash never depends on the network. A digest already
 * recorded in an existing target.json or in the store is reused without a request.
 */
import { inParallel } from '../core/pool.ts';
import type { HeaderPackage, ImagePackage, ListedImage } from '../model/kernel-list.ts';
import { unavailableText, type Fetched, type HeaderStore, type Unavailable } from '../packages/store.ts';
import { targetSpecSchema, type DraftTarget, type TargetSpec } from '../model/target.ts';
import type { Skipped } from './plan.ts';

export type KnownDigests = Map<string, { sha256: string; size: number }>;

/** Digests recorded in existing targets, by URL. */
export function knownDigests(targets: TargetSpec[]): KnownDigests {
  const out: KnownDigests = new Map();
  for (const t of targets) {
    for (const h of t.headers) out.set(h.url, { sha256: h.sha256, size: h.size });
    if (t.kernel.image) out.set(t.kernel.image.url, { sha256: t.kernel.image.sha256, size: t.kernel.image.size });
  }
  return out;
}

/** Where a package's bytes were found and what they are, or why no URL served them. */
type Resolution = { served: Fetched } | Unavailable;

export interface Resolved {
  targets: TargetSpec[];
  skipped: Skipped[];
  /** Header package URLs (as listed) that no mirror served */
  unserved: Set<string>;
}

export async function resolveTargets(
  drafts: DraftTarget[],
  known: KnownDigests,
  store: HeaderStore,
  /** URLs that no mirror served, by the package's listed URL: kept across calls so a dead URL is asked once. */
  failed: Map<string, Unavailable> = new Map(),
  // A few requests at a time: a list with hundreds of dead URLs ends in bounded time, and no
  // mirror sees more than this many connections from us.
  parallel = 8,
): Promise<Resolved> {
  // Header packages and kernel images alike: a name, a version and the URLs that may serve it.
  const pending = new Map<string, ListedImage>();
  for (const t of drafts) {
    for (const p of [...t.headers, ...(t.kernel.image ? [t.kernel.image] : [])])
      if (!p.sha256 && !pending.has(p.url)) pending.set(p.url, p);
  }

  const resolved = new Map<string, Resolution>();
  await inParallel(
    [...pending.values()],
    async (p) => {
      const urls = [p.url, ...(p.alternatives ?? [])];
      const hit = urls.map((u) => ({ u, d: known.get(u) })).find((x) => x.d);
      const r = hit ? { url: hit.u, ...hit.d! } : (failed.get(p.url) ?? (await store.resolve(p)));
      if ('unavailable' in r) failed.set(p.url, r);
      resolved.set(p.url, 'unavailable' in r ? r : { served: r });
    },
    parallel,
  );

  const targets: TargetSpec[] = [];
  const skipped: Skipped[] = [];
  const unserved = new Set<string>();
  for (const draft of drafts) {
    const gone: string[] = [];
    const reasons = new Set<string>();
    const headers = draft.headers.map((h) => {
      if (h.sha256) return h as HeaderPackage;
      const r = resolved.get(h.url)!;
      if ('unavailable' in r) {
        unserved.add(h.url);
        gone.push(`${h.name} ${h.version}: ${unavailableText(r)}`);
        for (const u of r.unavailable) reasons.add(u.reason);
      }
      return 'served' in r ? pinned(h, r.served) : (h as HeaderPackage);
    });
    if (gone.length > 0) {
      const kind = `no mirror serves its header packages (${[...reasons].sort().join(', ')})`;
      skipped.push({
        what: draft.name,
        distro: draft.distro,
        kernel: `${draft.kernelrelease} ${draft.arch}`,
        kind,
        why: `no mirror serves ${gone.join('; ')}`,
      });
      continue;
    }
    targets.push(
      targetSpecSchema.parse({ ...draft, headers, kernel: { ...draft.kernel, ...imageResolution(draft, resolved) } }),
    );
  }
  return { targets, skipped, unserved };
}

function imageResolution(
  draft: DraftTarget,
  resolved: Map<string, Resolution>,
): Pick<TargetSpec['kernel'], 'image' | 'imageGap'> {
  const image = draft.kernel.image;
  if (!image) return {};
  if (image.sha256) return { image: image as ImagePackage };
  const r = resolved.get(image.url)!;
  if ('unavailable' in r)
    return { image: undefined, imageGap: `no mirror serves ${image.name} ${image.version} (${unavailableText(r)})` };
  return { image: pinned(image, r.served) };
}

/** The package as served: the URL that answered first, the others kept as alternatives; its digest trusted on first download. */
function pinned<P extends ListedImage>(p: P, served: Fetched): P & { sha256: string; size: number } {
  const alternatives = [p.url, ...(p.alternatives ?? [])].filter((u) => u !== served.url);
  const { alternatives: _listed, ...rest } = p;
  return {
    ...rest,
    url: served.url,
    sha256: served.sha256,
    size: served.size,
    pinnedBy: 'first-download',
    ...(alternatives.length > 0 ? { alternatives } : {}),
  } as P & { sha256: string; size: number };
}
