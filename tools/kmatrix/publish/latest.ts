/**
 * The stable address of a target's current modules, which a node computes from `uname -r` alone:
 *
 *   modules/<driver>/<distro>/<kernelrelease>/<arch>/latest.json       what is published, for programs
 *   modules/<driver>/<distro>/<kernelrelease>/<arch>/latest.sha256sums  the same files, for `sha256sum -c`
 *
 * latest.json names the build, each module (and its signed form), each package and the provenance
 * by store key (relative to the store's base URL) with its SHA256 and size. latest.sha256sums has one
 * `<sha256>  <key>` line per file, so a node with only sh, curl and sha256sum can fetch and check them
 * (tools/kmatrix-fetch.sh). Both are rewritten when the index entry changes, by compare-and-swap.
 */
import { inParallel } from '../core/pool.ts';
import { targetDir } from '../model/target.ts';
import type { ArtifactStore } from './artifact-store.ts';
import type { PublishedIndex, PublishedTarget } from './published-index.ts';

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

/** Rewrites a stored object when its bytes differ (compare-and-swap; a lost race is retried). */
async function putIfChanged(store: ArtifactStore, key: string, body: Buffer): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const old = await store.getVersioned(key);
    if (old?.body.equals(body)) return false;
    if (await store.replace(key, body, old?.version)) return true;
  }
  return false;
}

/** Brings every entry's latest.json and latest.sha256sums up to date; how many changed. */
export async function writeLatest(store: ArtifactStore, index: PublishedIndex): Promise<number> {
  let changed = 0;
  await inParallel(
    Object.values(index.targets),
    async (entry) => {
      const dir = latestDir(entry);
      const json = Buffer.from(`${JSON.stringify(latestJson(entry), null, 2)}\n`);
      if (await putIfChanged(store, `${dir}/latest.json`, json)) changed++;
      await putIfChanged(store, `${dir}/latest.sha256sums`, Buffer.from(latestSums(entry)));
    },
    8,
  );
  return changed;
}
