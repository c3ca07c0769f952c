/**
 * `kmatrix verify`: is this .ko what we published, built from what its provenance says, and
 * signed by the key we expect? Each check is a line; any failed check fails the whole.
 *
 * Trust comes from one place only: the store's index (which pins each module's and each
 * provenance envelope's SHA256), or a statement whose SHA256 the caller pins. Nothing found beside
 * the module is believed: whoever could change the module could change that too.
 */
import { KmatrixError } from '../core/errors.ts';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { sha256 } from '../core/hash.ts';
import { modinfoField } from '../model/modinfo.ts';
import { formatIssuePath } from '../core/json-file.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { checkSignature, splitSignature, type Signature } from './module-signature.ts';
import { statementSchema } from './provenance.ts';
import { envelopeSchema, envelopeSignedBy, IN_TOTO_PAYLOAD_TYPE, publicKeyId } from './dsse.ts';
import { findModule, loadIndex } from './published-index.ts';

export interface VerifyOptions {
  file: string;
  /** The trusted source: the store it was published to (its index must list these bytes)… */
  store?: ArtifactStore;
  /** …or a provenance file (envelope or bare statement) trusted because its SHA256 is pinned. */
  pinned?: { file: string; sha256: string };
  /** The public key provenance envelopes are signed with. */
  provenanceKey?: KeyObject;
  /** Certificate to check a module signature with. */
  cert?: string;
  /** An unsigned module, or unsigned provenance, fails. */
  requireSignature: boolean;
}

export interface Check {
  ok: boolean;
  what: string;
  detail: string;
}

type Add = (ok: boolean, what: string, detail: string) => void;

/** The provenance bytes the trusted source vouches for, with where they came from and the key id the store records. */
interface Vouched {
  bytes: Buffer;
  from: string;
  keyId?: string;
}

async function fromStore(
  store: ArtifactStore,
  bytes: Buffer,
  digest: string,
  signed: boolean,
  check: Add,
): Promise<Vouched | undefined> {
  const index = await loadIndex(store);
  const found = findModule(index, sha256(bytes)) ?? findModule(index, digest);
  if (!found) {
    check(false, 'published', `no target in ${store.description} has a module with these bytes`);
    return undefined;
  }
  const { module, entry, name } = found;
  if (signed && module.signed?.sha256 !== sha256(bytes)) {
    check(false, 'published', `${name} publishes these module bytes, but not with this signature`);
  } else check(true, 'published', `${name}: ${module.key}${signed ? ` (signed as ${module.signed!.key})` : ''}`);
  // The store signs its modules: the unsigned one is for reproducing, a node loads the signed one.
  if (!signed && module.signed)
    check(false, 'signature', `${store.description} publishes this module signed: verify ${module.signed.key}`);
  const from = store.locate(entry.provenance.key);
  const body = await store.get(entry.provenance.key);
  if (!body || sha256(body) !== entry.provenance.sha256) {
    check(false, 'provenance', `${from} does not match the SHA256 the index records for it`);
    return undefined;
  }
  return { bytes: body, from, ...(entry.provenance.keyId ? { keyId: entry.provenance.keyId } : {}) };
}

async function fromPin(pinned: { file: string; sha256: string }, check: Add): Promise<Vouched | undefined> {
  const body = await readFile(pinned.file).catch(() => undefined);
  const ok = !!body && sha256(body) === pinned.sha256;
  check(ok, 'pinned', ok ? `${pinned.file} has the pinned SHA256` : `${pinned.file} does not have the pinned SHA256`);
  return ok ? { bytes: body!, from: pinned.file } : undefined;
}

/** The statement inside the vouched bytes: a DSSE envelope (its signature checked) or a bare statement. */
function openEnvelope(v: Vouched, o: VerifyOptions, check: Add): unknown {
  let value: unknown;
  try {
    value = JSON.parse(v.bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const envelope = envelopeSchema.safeParse(value);
  if (!envelope.success) {
    // A bare statement, as older stores hold: vouched for by its SHA256 alone — unless a key was
    // given or the index says the store signs, when it is what a forger would put there instead.
    check(
      !o.requireSignature && !o.provenanceKey && !v.keyId,
      'signed by',
      'nobody (a bare statement, not an envelope)',
    );
    return value;
  }
  const env = envelope.data;
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    check(false, 'provenance', `${v.from} carries a ${env.payloadType} payload, not an in-toto statement`);
    return undefined;
  }
  const claimsKey = v.keyId ?? env.signatures[0]?.keyid;
  if (o.provenanceKey) {
    const ok = envelopeSignedBy(env, o.provenanceKey);
    const id = publicKeyId(o.provenanceKey);
    check(ok, 'signed by', ok ? `key ${id.slice(0, 16)}… (DSSE)` : `no valid signature by key ${id.slice(0, 16)}…`);
  } else if (env.signatures.length > 0 || v.keyId) {
    check(
      false,
      'signed by',
      `key ${claimsKey?.slice(0, 16) ?? '?'}…, which was not given to check it (--provenance-key FILE or KMATRIX_PROVENANCE_PUBLIC_KEY_FILE)`,
    );
  } else check(!o.requireSignature, 'signed by', 'nobody (unsigned envelope)');
  try {
    return JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

function checkStatement(value: unknown, from: string, digest: string, content: Buffer, check: Add): void {
  const parsed = statementSchema.safeParse(value);
  if (!parsed.success) {
    const why =
      value === undefined
        ? 'not JSON'
        : parsed.error.issues
            .map((i) => `${formatIssuePath(i.path)}: ${i.message}`)
            .slice(0, 3)
            .join('; ');
    check(false, 'provenance', `${from} is not an in-toto SLSA v1 provenance statement: ${why}`);
    return;
  }
  const s = parsed.data;
  const subject = s.subject.find((x) => x.digest.sha256 === digest);
  const build = s.predicate.buildDefinition;
  const deps = build.resolvedDependencies;
  const toolchain = deps.find((d) => d.name?.startsWith('toolchain:'));
  const headers = deps.filter((d) => /^linux-/.test(d.name ?? ''));
  const source = deps.find((d) => d.digest?.gitCommit);
  check(
    !!subject,
    'provenance',
    subject
      ? `subject "${subject.name}" of ${basename(from)}: target ${build.externalParameters.target}, toolchain ${toolchain?.uri ?? '?'}@sha256:${toolchain?.digest?.sha256?.slice(0, 12) ?? '?'}…, ${headers.length} header packages, source ${source?.digest?.gitCommit?.slice(0, 12) ?? '?'}, builder ${s.predicate.runDetails.builder.id}`
      : `${from} does not name these bytes (sha256 ${digest}) as a subject`,
  );
  const release = String(build.externalParameters.kernelrelease ?? '');
  const vermagic = modinfoField(content, 'vermagic') ?? '';
  if (release)
    check(
      vermagic.startsWith(`${release} `),
      'vermagic',
      `"${vermagic.trim()}"${vermagic.startsWith(`${release} `) ? '' : ` does not start with the provenance's kernelrelease ${release}`}`,
    );
}

async function checkModuleSignature(signature: Signature | undefined, o: VerifyOptions, checks: Check[], check: Add) {
  if (signature) {
    if (!o.cert) {
      check(
        false,
        'signature',
        'the module is signed, but no certificate was given to check it (--cert FILE or KMATRIX_SIGN_CERT_FILE)',
      );
      return;
    }
    try {
      await checkSignature(signature, o.cert);
      check(true, 'signature', `valid PKCS#7 signature by ${o.cert}`);
    } catch (error) {
      check(false, 'signature', (error as Error).message);
    }
  } else if (!checks.some((c) => c.what === 'signature')) {
    check(!o.requireSignature, 'signature', 'none (unsigned module)');
  }
}

export async function verifyArtifact(o: VerifyOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const check: Add = (ok, what, detail) => checks.push({ ok, what, detail });
  const bytes = await readFile(o.file).catch((error: NodeJS.ErrnoException) => {
    throw new KmatrixError(`cannot read ${o.file} (${error.code ?? error.message})`, {
      stage: 'verify',
      remedy: 'give the path of the module file the node downloaded',
    });
  });
  let signature: Signature | undefined;
  try {
    signature = splitSignature(bytes);
  } catch (error) {
    check(false, 'signature', (error as Error).message);
  }
  const content = signature?.content ?? bytes;
  const digest = sha256(content);
  check(true, 'digest', `sha256 ${digest}${signature ? ' (the module without its signature)' : ''}`);

  const vouched = o.pinned
    ? await fromPin(o.pinned, check)
    : o.store
      ? await fromStore(o.store, bytes, digest, !!signature, check)
      : undefined;
  if (!o.pinned && !o.store) check(false, 'provenance', 'nothing to trust: no store and no pinned statement');
  if (vouched) checkStatement(openEnvelope(vouched, o, check), vouched.from, digest, content, check);
  await checkModuleSignature(signature, o, checks, check);
  return checks;
}
