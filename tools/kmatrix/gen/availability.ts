/**
 * Mirrors are not always complete (bullseye's arm64 kbuild here answers 404 although the index
 * lists it). A HEAD per package at crawl time turns such gaps into a reported fact in the kernel
 * list instead of a build that fails later. Only 404/410 mean "missing"; any other failure is
 * retried and then an error: a network fault is never read as "not there".
 */
import { inParallel } from '../core/pool.ts';
import { HttpStatusError, withRetries } from '../core/fetch.ts';
import { packageLabel, type KernelEntry } from '../model/kernel-list.ts';

async function exists(url: string): Promise<boolean> {
  return withRetries(`HEAD ${url}`, { stage: 'crawl', attempts: 3, backoffMs: 300 }, async () => {
    const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(30_000) });
    if (res.status === 404 || res.status === 410) return false;
    if (!res.ok) throw new HttpStatusError(url, res.status);
    return true;
  });
}

/** Sets kmatrix.unavailable on entries whose packages the mirror does not serve; returns how many URLs are missing. */
export async function markUnavailable(
  entries: KernelEntry[],
  log: (line: string) => void,
  concurrency = 8,
): Promise<number> {
  const urls = [
    ...new Set(
      entries.flatMap((e) =>
        [...(e.kmatrix?.packages ?? []), ...(e.kmatrix?.image ? [e.kmatrix.image] : [])].map((p) => p.url),
      ),
    ),
  ];
  const missing = new Set<string>();
  await inParallel(
    urls,
    async (url) => {
      if (!(await exists(url))) missing.add(url);
    },
    concurrency,
  );
  for (const e of entries) {
    const gone = [...(e.kmatrix?.packages ?? []), ...(e.kmatrix?.image ? [e.kmatrix.image] : [])]
      .filter((p) => missing.has(p.url))
      .map(packageLabel);
    if (e.kmatrix && gone && gone.length > 0) e.kmatrix.unavailable = [...new Set(gone)].sort();
  }
  if (missing.size > 0)
    log(`  ${missing.size} of ${urls.length} package URLs are listed in the index but not served by the mirror (404)`);
  return missing.size;
}
