/**
 * Publishing: the built modules of every target in targets/ go to the artifact store under
 *   modules/<driver>/<distro>/<kernelrelease>/<arch>/<build id>/<module>.ko   (+ .signed.ko)
 *                                                             /provenance.<key id|unsigned>.dsse.json
 *   modules/<driver>/<distro>/<kernelrelease>/<arch>/latest.json, latest.sha256sums   (latest.ts)
 * and then the index is rewritten, once, to say what is published. The build id is the SHA256 of
 * the build's inputs, so one key always means one set of bytes: publishing again is a no-op, and
 * bytes that differ from what a key already holds stop the publish before the index changes.
 */
import { uncommitted } from '../gen/git-state.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUILD_RECORD, readBuildRecord, type BuildRecord } from '../model/build-record.ts';
import { sha256 } from '../core/hash.ts';
import { KmatrixError } from '../core/errors.ts';
import type { HeaderStore } from '../packages/store.ts';
import { existingTargetFiles } from '../gen/sync.ts';
import { inParallel, KeyedRuns } from '../core/pool.ts';
import { isRemoved, loadTargetFile, type Target } from '../model/target.ts';
import { outputDir, targetDir } from '../model/target-place.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { signModule, keyIdOf, type SigningKey } from './module-signature.ts';
import { sourceDigests } from '../recipe/container.ts';
import { provenanceStatement, statementSchema, type ProvenanceInput } from './provenance.ts';
import { envelopeOf, envelopeSchema, envelopeSignedBy, type ProvenanceKey } from './dsse.ts';
import { createPublicKey } from 'node:crypto';
import { loadIndex, updateIndex, type PublishedIndex, type PublishedTarget } from './published-index.ts';
import { writeLatest } from './latest.ts';

export interface PublishOptions {
  root: string;
  store: ArtifactStore;
  revision: string;
  repository: string;
  builder: ProvenanceInput['builder'];
  signing?: { key: SigningKey; headers: HeaderStore };
  /** Signs each provenance envelope (KMATRIX_PROVENANCE_KEY_FILE). */
  provenanceKey?: ProvenanceKey;
  /** Publish just these targets (marked `requested`); every other index entry stays as it is. */
  only?: Set<string>;
  log: (line: string) => void;
}

export interface PublishReport {
  published: string[];
  unchanged: string[];
  /** Live targets without a current build in dist/ (they keep their last published entry). */
  notBuilt: { name: string; why: string }[];
  /** DKMS builds the driver excluded for the kernel: nothing to publish. */
  skipped: string[];
  dropped: string[];
}

/** The build of a target in dist/, if it is a build of this very target.json and these sources. */
async function currentBuild(
  root: string,
  target: Target,
  targetJson: Buffer,
  sources: (target: Target) => Promise<Record<string, string>>,
): Promise<BuildRecord | { why: string } | 'skipped'> {
  const record = await readBuildRecord(outputDir(root, target));
  if (!record) return { why: `not built (no kmatrix ${BUILD_RECORD} in dist/…)` };
  if (record.skipped) return 'skipped';
  if (record.inputs.targetJsonSha256 !== sha256(targetJson))
    return { why: 'the build in dist/ is of an older target.json' };
  if (JSON.stringify(record.inputs.driverSources) !== JSON.stringify(await sources(target)))
    return { why: 'the build in dist/ is of other driver sources' };
  return record;
}

/** The built modules, each checked against its build record (only read when they are uploaded). */
async function builtModules(
  root: string,
  target: Target,
  record: BuildRecord,
): Promise<Map<string, Buffer> | { why: string }> {
  const files = new Map<string, Buffer>();
  for (const o of record.outputs) {
    const body = await readFile(join(outputDir(root, target), o.file)).catch(() => undefined);
    if (!body || sha256(body) !== o.sha256) return { why: `${o.file} in dist/ does not match its build.json` };
    files.set(o.file, body);
  }
  return files;
}

export const buildIdOf = (record: BuildRecord) => sha256(JSON.stringify(record.inputs));

const unchanged = (
  entry: PublishedTarget | undefined,
  buildId: string,
  record: BuildRecord,
  signing: boolean,
  provenanceKey: string | undefined,
) =>
  entry?.buildId === buildId &&
  (!provenanceKey || entry.provenance.keyId === provenanceKey) &&
  entry.modules.length === record.outputs.length &&
  record.outputs.every((o) =>
    entry.modules.some((m) => m.file === o.file && m.sha256 === o.sha256 && (!signing || m.signed)),
  );

type Put = (
  key: string,
  body: Buffer,
  what: string,
  acceptExisting?: (existing: Buffer) => boolean,
) => Promise<{ key: string; sha256: string; size: number }>;

/**
 * The statement in a DSSE envelope, signed when there is a key, under a name of its key (so
 * signing later, or with another key, never collides with what is published). An envelope
 * published before (another commit or builder, same build inputs) is evidence for the same bytes
 * as long as it names them and carries the key's signature: it is kept, never rewritten.
 */
async function putProvenance(put: Put, dir: string, statement: Buffer, record: BuildRecord, key?: ProvenanceKey) {
  const body = Buffer.from(`${JSON.stringify(envelopeOf(statement, key), null, 2)}\n`);
  const publicKey = key && createPublicKey(key.privateKey);
  const namesOurs = (existing: Buffer) => {
    let value: unknown;
    try {
      value = JSON.parse(existing.toString('utf8'));
    } catch {
      return false;
    }
    const envelope = envelopeSchema.safeParse(value);
    if (!envelope.success || (publicKey && !envelopeSignedBy(envelope.data, publicKey))) return false;
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(envelope.data.payload, 'base64').toString('utf8'));
    } catch {
      return false;
    }
    const parsed = statementSchema.safeParse(payload);
    const names = new Set(parsed.success ? parsed.data.subject.map((x) => x.digest.sha256) : []);
    return record.outputs.every((x) => names.has(x.sha256));
  };
  const name = `provenance.${key ? key.keyId.slice(0, 16) : 'unsigned'}.dsse.json`;
  const stored = await put(`${dir}/${name}`, body, 'provenance envelope', namesOurs);
  return { ...stored, ...(key ? { keyId: key.keyId } : {}) };
}

export async function publish(o: PublishOptions): Promise<PublishReport> {
  const index = await loadIndex(o.store);
  const report: PublishReport = { published: [], unchanged: [], notBuilt: [], skipped: [], dropped: [] };
  const next: PublishedIndex['targets'] = {};
  const conflicts: string[] = [];
  const keyId = o.signing ? await keyIdOf(o.signing.key.certFile) : undefined;

  const put = async (key: string, body: Buffer, what: string, acceptExisting?: (existing: Buffer) => boolean) => {
    const result = await o.store.putOnce(key, body);
    if (result === 'different') {
      const existing = acceptExisting && (await o.store.get(key));
      if (existing && acceptExisting(existing)) return { key, sha256: sha256(existing), size: existing.length };
      conflicts.push(`${o.store.locate(key)} already holds other bytes than this ${what} (sha256 ${sha256(body)})`);
    }
    return { key, sha256: sha256(body), size: body.length };
  };

  // Each driver's tree is hashed once per source mount (the driver, without its smoke test), not once per target.
  const trees = new KeyedRuns<Record<string, string>>({ remember: true });
  const sources = (target: Target) => {
    const mount = target.recipe.mounts.find((m) => m.kind === 'source');
    return trees.run(JSON.stringify(mount ?? null), () => sourceDigests(o.root, target.recipe));
  };
  // Targets go a few at a time: each is a handful of round trips to the store (HEAD, PUT).
  await inParallel(
    await existingTargetFiles(o.root),
    async (file) => {
      const path = join(o.root, file);
      const loaded = await loadTargetFile(path);
      if (isRemoved(loaded)) return;
      const target = loaded;
      const old = index.targets[target.name];
      if (o.only && !o.only.has(target.name)) {
        if (old) next[target.name] = old;
        return;
      }
      const record = await currentBuild(o.root, target, await readFile(path), sources);
      if (record === 'skipped') {
        report.skipped.push(target.name);
        return;
      }
      if ('why' in record) {
        report.notBuilt.push({ name: target.name, why: record.why });
        if (old) next[target.name] = old;
        return;
      }
      const buildId = buildIdOf(record);
      if (old && unchanged(old, buildId, record, !!o.signing, o.provenanceKey?.keyId)) {
        if (old.requested && !o.only) {
          // Published on request before, part of the matrix now: an ordinary entry from here on.
          const { requested: _, ...entry } = old;
          next[target.name] = entry;
          report.published.push(target.name);
        } else {
          next[target.name] = old;
          report.unchanged.push(target.name);
        }
        return;
      }
      const files = await builtModules(o.root, target, record);
      if ('why' in files) {
        report.notBuilt.push({ name: target.name, why: files.why });
        if (old) next[target.name] = old;
        return;
      }
      const dir = `modules/${targetDir(target).replace(/^targets\//, '')}/${buildId.slice(0, 16)}`;
      const modules: PublishedTarget['modules'] = [];
      for (const out of record.outputs) {
        const body = files.get(out.file)!;
        const stored = await put(`${dir}/${out.file}`, body, 'module');
        let signed: PublishedTarget['modules'][number]['signed'];
        if (o.signing) {
          const bytes = await signModule(body, target, o.signing.headers, o.signing.key);
          signed = {
            ...(await put(`${dir}/${out.file.replace(/\.ko$/, '')}.signed.ko`, bytes, 'signed module')),
            keyId: keyId!,
          };
        }
        modules.push({ file: out.file, vermagic: out.vermagic, ...stored, ...(signed ? { signed } : {}) });
      }
      const statement = Buffer.from(
        `${JSON.stringify(provenanceStatement({ target, record, revision: o.revision, repository: o.repository, builder: o.builder }), null, 2)}\n`,
      );
      const provenance = await putProvenance(put, dir, statement, record, o.provenanceKey);
      next[target.name] = {
        buildId,
        revision: o.revision,
        publishedAt: new Date().toISOString(),
        target,
        inputs: record.inputs,
        modules,
        provenance,
        ...(o.only ? { requested: true as const } : {}),
      };
      report.published.push(target.name);
      o.log(
        `+ ${target.name}  ${modules.map((m) => `${m.file} ${m.sha256.slice(0, 12)}…${m.signed ? ' (signed)' : ''}`).join(', ')}`,
      );
    },
    8,
  );
  for (const list of [report.published, report.unchanged, report.skipped]) list.sort();
  report.notBuilt.sort((a, b) => (a.name < b.name ? -1 : 1));
  // What leaves the index: targets gone from the matrix — not those published on request (this
  // checkout never had their target.json), and nothing at all when publishing on request.
  report.dropped = o.only ? [] : Object.keys(index.targets).filter((n) => !(n in next) && !index.targets[n]!.requested);

  if (conflicts.length > 0) {
    throw new KmatrixError(
      `${conflicts.length} artifact${conflicts.length === 1 ? '' : 's'} would be overwritten with different bytes; nothing was published to the index`,
      {
        stage: 'publish',
        problems: conflicts,
        remedy:
          'the same build inputs gave other bytes than the published ones: check reproducibility with `npx kmatrix reproduce TARGET --verify`; a published artifact is never replaced',
      },
    );
  }
  if (report.published.length > 0 || report.dropped.length > 0) {
    await updateIndex(o.store, (targets) => {
      for (const name of report.dropped) delete targets[name];
      for (const name of report.published) targets[name] = next[name]!;
      return targets;
    });
  }
  // The stable per-kernel addresses (latest.ts) of what this publish changed.
  await writeLatest(
    o.store,
    report.published.map((name) => next[name]!),
  );
  return report;
}

/** What a published build depends on, which must be committed for its provenance to name the commit it came from. */
const PUBLISHED_FROM = ['targets', 'drivers', 'toolchains', 'plugins/kmatrix', 'tools/kmatrix', 'support-matrix.json'];

/** Refuses a working tree with uncommitted changes under PUBLISHED_FROM. */
export async function assertCommitted(root: string): Promise<void> {
  const dirty = await uncommitted(root, PUBLISHED_FROM);
  if (dirty.length === 0) return;
  throw new KmatrixError(
    `uncommitted changes: ${dirty.slice(0, 3).join(', ')}${dirty.length > 3 ? ` and ${dirty.length - 3} more` : ''}`,
    {
      stage: 'publish',
      remedy: 'commit them first (the provenance names the commit the modules were built from), or pass --allow-dirty',
    },
  );
}
