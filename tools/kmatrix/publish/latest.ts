/**
 * The stable address of a target's current modules, which a node computes from `uname -r` alone:
 *
 *   modules/<driver>/<distro>/<kernelrelease>/<arch>/latest.json       what is published, for programs
 *   modules/<driver>/<distro>/<kernelrelease>/<arch>/latest.sha256sums  the same files, for `sha256sum -c`
 *
 * latest.json names the build, each module (and its signed form), each package and the provenance
 * by store key (relative to the store's base URL) with its SHA256 and size. latest.sha256sums has one
 * `<sha256>  <key>` line per file, so a node with only sh, curl and sha256sum can fetch and check them
 * (tools/kmatrix-fetch.sh). Both are written for the entries a publish changed, by compare-and-swap,
 * and never replaced by an older publish's (a slower concurrent publisher, the request service):
 * latest means the newest publishedAt. A target dropped from the index keeps its last latest.json
 * (the store deletes nothing; its bytes stay valid for that kernel).
 */
import { inParallel } from '../core/pool.ts';
import { targetDir } from '../model/target-place.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { KmatrixError } from '../core/errors.ts';
import type { PublishedTarget } from './published-index.ts';

export const latestDir = (entry: PublishedTarget) => `modules/${targetDir(entry.target).replace(/^targets\//, '')}`;

export function latestJson(entry: PublishedTarget) {
  const { target } = entry;
  return {
    target: target.name,
    driver: target.driver.name,
    distro: target.distro,
    kernelrelease: target.kernelrelease,
    arch: target.arch,
    buildId: entry.buildId,
    revision: entry.revision,
    publishedAt: entry.publishedAt,
    modules: entry.modules.map((m) => ({
      file: m.file,
      key: m.key,
      sha256: m.sha256,
      size: m.size,
      ...(m.signed ? { signed: { key: m.signed.key, sha256: m.signed.sha256, size: m.signed.size } } : {}),
    })),
    packages: (entry.packages ?? []).map((p) => ({
      format: p.format,
      name: p.name,
      key: p.key,
      sha256: p.sha256,
      size: p.size,
    })),
    provenance: { key: entry.provenance.key, sha256: entry.provenance.sha256 },
  };
}

export function latestSums(entry: PublishedTarget): string {
  const files = [
    ...entry.modules.flatMap((m) => [m, ...(m.signed ? [m.signed] : [])]),
    ...(entry.packages ?? []),
    entry.provenance,
  ];
  return files.map((f) => `${f.sha256}  ${f.key}\n`).join('');
}

/** When the stored latest.json was published (absent or unreadable: never). */
function publishedAtOf(body: Buffer | undefined): string {
  try {
    return body ? String(JSON.parse(body.toString('utf8')).publishedAt ?? '') : '';
  } catch {
    return '';
  }
}

/**
 * Writes an object unless it holds these bytes or a newer publish's (compare-and-swap; a lost race
 * is read again). False when it was left as it is.
 */
async function putUnlessNewer(store: ArtifactStore, key: string, body: Buffer, publishedAt: string, guard: string) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const [old, newest] = await Promise.all([store.getVersioned(key), store.get(guard)]);
    if (old?.body.equals(body) || publishedAtOf(newest) > publishedAt) return false;
    if (await store.replace(key, body, old?.version)) return true;
  }
  throw new KmatrixError(`${store.locate(key)} kept changing while this publish wrote it (5 attempts)`, {
    stage: 'publish',
    remedy: 'the artifacts and the index are stored; run the publish again (it is idempotent)',
  });
}

/** Brings these entries' latest.sha256sums and latest.json up to date (the JSON last: it is the guard). */
export async function writeLatest(store: ArtifactStore, entries: readonly PublishedTarget[]): Promise<void> {
  await inParallel(
    entries,
    async (entry) => {
      const dir = latestDir(entry);
      const guard = `${dir}/latest.json`;
      const json = Buffer.from(`${JSON.stringify(latestJson(entry), null, 2)}\n`);
      await putUnlessNewer(store, `${dir}/latest.sha256sums`, Buffer.from(latestSums(entry)), entry.publishedAt, guard);
      await putUnlessNewer(store, guard, json, entry.publishedAt, guard);
    },
    8,
  );
}
