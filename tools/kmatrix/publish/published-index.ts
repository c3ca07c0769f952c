/**
 * The published index: what the artifact store serves, target by target — the target.json it was
 * built from, the build's inputs, each module's key and SHA256, the provenance statement's. This is
 * "the last published state": `kmatrix diff --published` compares the matrix against it, and
 * `kmatrix request` answers from it. It is the store's only mutable object.
 */
import { z } from 'zod';
import { buildRecordSchema } from '../model/build-record.ts';
import { sha256Hex } from '../model/names.ts';
import { anyTargetSchema } from '../model/target.ts';
import { KmatrixError } from '../core/errors.ts';
import { parseWith } from '../core/json-file.ts';
import { sha256 } from '../core/hash.ts';
import type { ArtifactStore } from './artifact-store.ts';

export const INDEX_KEY = 'index.json';

const stored = z.object({ key: z.string(), sha256: sha256Hex, size: z.number().int().nonnegative() }).strict();

/** A module's file name: packages and images put it in paths and spec files, so nothing else passes. */
const moduleFile = z.string().regex(/^[A-Za-z0-9_-]{1,64}\.ko$/, 'must be a module file name (name.ko)');

export const publishedModuleSchema = z
  .object({
    file: moduleFile,
    vermagic: z.string(),
    ...stored.shape,
    /** The same module with a signature appended (scripts/sign-file), when publishing signs. */
    signed: stored.extend({ keyId: z.string() }).strict().optional(),
  })
  .strict();

export const publishedTargetSchema = z
  .object({
    /** SHA256 of the build's inputs (build.json `inputs`): one build id, one set of module bytes. */
    buildId: sha256Hex,
    /** The commit the target was published from. */
    revision: z.string().regex(/^[0-9a-f]{40}$/),
    publishedAt: z.string(),
    target: anyTargetSchema,
    inputs: buildRecordSchema.shape.inputs,
    modules: z.array(publishedModuleSchema).min(1),
    /** The DSSE envelope of the in-toto statement; keyId: the key that signed it, if one did. */
    provenance: stored.extend({ keyId: sha256Hex.optional() }).strict(),
    /** The KMM kmod image of these modules (`publish --kmm`): by digest, its tag and the kernel directory in it. */
    kmm: z
      .object({
        image: z.string().regex(/^[^@\s]+@sha256:[0-9a-f]{64}$/),
        tag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/),
        kernel: z.string(),
      })
      .strict()
      .optional(),
    /** Installable packages of these modules (`publish --packages`): one per format, in the build's folder. */
    packages: z
      .array(stored.extend({ format: z.enum(['deb', 'rpm']), name: z.string(), file: z.string() }).strict())
      .optional(),
    /** Published by `kmatrix request` for a kernel the committed matrix does not list: kept by later publishes. */
    requested: z.literal(true).optional(),
  })
  .strict();
export type PublishedTarget = z.infer<typeof publishedTargetSchema>;

export const publishedIndexSchema = z
  .object({
    format: z.literal(1),
    updatedAt: z.string(),
    targets: z.record(z.string(), publishedTargetSchema),
  })
  .strict();
export type PublishedIndex = z.infer<typeof publishedIndexSchema>;

/** The module files of an entry as published (the signed bytes when it was signed), checked against the index. */
export async function readPublishedModules(store: ArtifactStore, entry: PublishedTarget): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const m of entry.modules) {
    const stored = m.signed ?? m;
    const body = await store.get(stored.key);
    if (!body || sha256(body) !== stored.sha256) {
      throw new KmatrixError(`${store.locate(stored.key)} is missing or not the published bytes`, {
        stage: 'publish',
        target: entry.target.name,
        remedy: 'publish the modules again (`npx kmatrix publish`)',
      });
    }
    // Signed modules keep the module's own name: modprobe looks for <name>.ko.
    files.set(m.file, body);
  }
  return files;
}

export const emptyIndex = (): PublishedIndex => ({ format: 1, updatedAt: new Date(0).toISOString(), targets: {} });

/** The store's index, or an empty one for a store nothing was published to yet. */
export async function loadIndex(store: ArtifactStore): Promise<PublishedIndex> {
  return (await loadIndexVersioned(store)).index;
}

/** The index and its version, for a conditional rewrite. */
export async function loadIndexVersioned(
  store: ArtifactStore,
): Promise<{ index: PublishedIndex; version: string | undefined }> {
  const found = await store.getVersioned(INDEX_KEY);
  if (!found) return { index: emptyIndex(), version: undefined };
  return { index: parseIndex(store, found.body), version: found.version };
}

function parseIndex(store: ArtifactStore, body: Buffer): PublishedIndex {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new KmatrixError(`${store.locate(INDEX_KEY)} is not JSON: ${(error as Error).message}`, {
      stage: 'publish',
      remedy: "restore the index from the store's versioning/backup, or publish again into an empty store",
    });
  }
  return parseWith(publishedIndexSchema, value, {
    file: store.locate(INDEX_KEY),
    stage: 'publish',
    what: 'published index',
    remedy: 'the index is written only by `kmatrix publish`; restore it from a backup',
  });
}

/** Which published module (if any) has these bytes, signed or not. */
export function findModule(
  index: PublishedIndex,
  sha256: string,
): { name: string; entry: PublishedTarget; module: PublishedTarget['modules'][number]; signed: boolean } | undefined {
  for (const [name, entry] of Object.entries(index.targets)) {
    for (const module of entry.modules) {
      if (module.sha256 === sha256) return { name, entry, module, signed: false };
      if (module.signed?.sha256 === sha256) return { name, entry, module, signed: true };
    }
  }
  return undefined;
}

/**
 * Rewrites the index by compare-and-swap: `change` is applied to the entries as they are *now*
 * (another publisher — CI, the request service — may have written since this one read them, and
 * its entries must survive), and applied again to a fresh read when another writer came first.
 */
/**
 * Adds what was made from published builds (a KMM image, packages) to their index entries: each
 * goes into the entry it was made from only if that entry still holds the same build (a newer
 * publish may have replaced it meanwhile). Returns the entries as written.
 */
export async function addToEntries(
  store: ArtifactStore,
  made: ReadonlyMap<string, { buildId: string; fields: Partial<PublishedTarget> }>,
): Promise<PublishedTarget[]> {
  const written: PublishedTarget[] = [];
  if (made.size === 0) return written;
  await updateIndex(store, (targets) => {
    written.length = 0;
    for (const [name, m] of made) {
      const entry = targets[name];
      if (entry?.buildId !== m.buildId) continue;
      targets[name] = { ...entry, ...m.fields };
      written.push(targets[name]);
    }
    return targets;
  });
  return written;
}

export async function updateIndex(
  store: ArtifactStore,
  change: (targets: PublishedIndex['targets']) => PublishedIndex['targets'],
): Promise<void> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const { index, version } = await loadIndexVersioned(store);
    const targets = change({ ...index.targets });
    const sorted = Object.fromEntries(Object.entries(targets).sort(([a], [b]) => (a < b ? -1 : 1)));
    const body: PublishedIndex = { format: 1, updatedAt: new Date().toISOString(), targets: sorted };
    if (await store.replace(INDEX_KEY, Buffer.from(`${JSON.stringify(body, null, 2)}\n`), version)) return;
  }
  throw new KmatrixError(`${store.locate(INDEX_KEY)} kept changing while this publish wrote it (5 attempts)`, {
    stage: 'publish',
    remedy: 'the artifacts are stored; run the publish again (it is idempotent)',
  });
}
