/**
 * `kmatrix verify`: is this .ko what we published, built from what its provenance says, and
 * signed by the key we expect? Each check is a line; any failed check fails the whole.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sha256 } from '../core/hash.ts';
import { modinfoField } from '../model/modinfo.ts';
import { formatIssuePath } from '../core/json-file.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { checkSignature, splitSignature, type Signature } from './module-signature.ts';
import { statementSchema } from './provenance.ts';
import { findModule, loadIndex } from './published-index.ts';

export interface VerifyOptions {
  file: string;
  /** The store it was published to: the index must list it. */
  store?: ArtifactStore;
  /** A provenance statement; default: provenance.intoto.json beside the file, else the store's. */
  provenance?: string;
  /** Certificate to check a signature with. */
  cert?: string;
  requireSignature: boolean;
}

export interface Check {
  ok: boolean;
  what: string;
  detail: string;
}

export async function verifyArtifact(o: VerifyOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const check = (ok: boolean, what: string, detail: string) => checks.push({ ok, what, detail });
  const bytes = await readFile(o.file);
  let signature: Signature | undefined;
  try {
    signature = splitSignature(bytes);
  } catch (error) {
    check(false, 'signature', (error as Error).message);
  }
  const content = signature?.content ?? bytes;
  const digest = sha256(content);
  check(true, 'digest', `sha256 ${digest}${signature ? ' (the module without its signature)' : ''}`);

  let statementBytes: Buffer | undefined;
  let statementFrom = '';
  if (o.store) {
    const index = await loadIndex(o.store);
    const found = findModule(index, sha256(bytes)) ?? findModule(index, digest);
    if (!found) check(false, 'published', `no target in ${o.store.description} has a module with these bytes`);
    else {
      const signedOk = !signature || found.module.signed?.sha256 === sha256(bytes);
      check(
        signedOk,
        'published',
        signedOk
          ? `${found.name}: ${found.module.key}${signature ? ` (signed as ${found.module.signed!.key})` : ''}`
          : `${found.name} publishes these module bytes, but not with this signature`,
      );
      if (!o.provenance) {
        statementBytes = await o.store.get(found.entry.provenance.key);
        statementFrom = o.store.locate(found.entry.provenance.key);
        const same = !!statementBytes && sha256(statementBytes) === found.entry.provenance.sha256;
        if (!same) check(false, 'provenance', `${statementFrom} does not match the SHA256 the index records for it`);
      }
    }
  }
  if (!statementBytes) {
    const file = o.provenance ?? join(dirname(o.file), 'provenance.intoto.json');
    statementBytes = await readFile(file).catch(() => undefined);
    statementFrom = file;
  }
  if (!statementBytes) {
    check(
      false,
      'provenance',
      `no provenance statement: none at ${statementFrom}${o.store ? '' : ' (pass --store or --provenance)'}`,
    );
  } else {
    let value: unknown;
    try {
      value = JSON.parse(statementBytes.toString('utf8'));
    } catch {
      value = undefined;
    }
    const parsed = statementSchema.safeParse(value);
    if (!parsed.success) {
      const why =
        value === undefined
          ? 'not JSON'
          : parsed.error.issues
              .map((i) => `${formatIssuePath(i.path)}: ${i.message}`)
              .slice(0, 3)
              .join('; ');
      check(false, 'provenance', `${statementFrom} is not an in-toto SLSA v1 provenance statement: ${why}`);
    } else {
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
          ? `subject "${subject.name}" of ${basename(statementFrom)}: target ${build.externalParameters.target}, toolchain ${toolchain?.uri ?? '?'}@sha256:${toolchain?.digest?.sha256?.slice(0, 12) ?? '?'}…, ${headers.length} header packages, source ${source?.digest?.gitCommit?.slice(0, 12) ?? '?'}, builder ${s.predicate.runDetails.builder.id}`
          : `${statementFrom} does not name these bytes (sha256 ${digest}) as a subject`,
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
  }

  if (signature) {
    if (!o.cert)
      check(
        false,
        'signature',
        'the module is signed, but no certificate was given to check it (--cert FILE or KMATRIX_SIGN_CERT_FILE)',
      );
    else {
      try {
        await checkSignature(signature, o.cert);
        check(true, 'signature', `valid PKCS#7 signature by ${o.cert}`);
      } catch (error) {
        check(false, 'signature', (error as Error).message);
      }
    }
  } else if (!checks.some((c) => c.what === 'signature')) {
    check(!o.requireSignature, 'signature', 'none (unsigned module)');
  }
  return checks;
}
