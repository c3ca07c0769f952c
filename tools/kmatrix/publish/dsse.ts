/**
 * Provenance in a DSSE envelope (github.com/secure-systems-lab/dsse, v1): the statement's bytes,
 * base64, with signatures over DSSE's pre-authentication encoding of payload type and payload.
 * Signing keys are PEM private keys, Ed25519 (deterministic: republishing gives the same bytes)
 * or ECDSA P-256 with SHA-256; a key's id is the SHA256 of its public key (SPKI, DER). Written here
 * on node:crypto, not a library: the format is three fields and one encoding, and the sigstore
 * libraries that implement it verify Fulcio certificates and bundles, not a bare public key.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { KmatrixError } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export const envelopeSchema = z
  .object({
    payloadType: z.string(),
    payload: z.base64(),
    signatures: z.array(z.object({ keyid: z.string().optional(), sig: z.base64() }).loose()),
  })
  .strict();
export type Envelope = z.infer<typeof envelopeSchema>;

/** DSSE's PAE: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** ECDSA takes a digest name; Ed25519 hashes internally and takes none. */
const digestFor = (key: KeyObject) => (key.asymmetricKeyType === 'ed25519' ? null : 'sha256');

export function publicKeyId(publicKey: KeyObject): string {
  return sha256(publicKey.export({ type: 'spki', format: 'der' }));
}

export interface ProvenanceKey {
  privateKey: KeyObject;
  keyId: string;
}

function checkKeyType(key: KeyObject, file: string): void {
  const ok =
    key.asymmetricKeyType === 'ed25519' ||
    (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1');
  if (!ok)
    throw new KmatrixError(`${file} is a ${key.asymmetricKeyType} key; provenance keys are Ed25519 or ECDSA P-256`, {
      stage: 'publish',
      remedy: 'make one with `openssl genpkey -algorithm ed25519 -out provenance.key`',
    });
}

async function readPem(file: string, variable: string): Promise<Buffer> {
  return readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new KmatrixError(`cannot read ${variable} (${file}): ${error.code}`, {
      stage: 'publish',
      remedy: `point ${variable} at a readable PEM file`,
    });
  });
}

/** The provenance signing key from KMATRIX_PROVENANCE_KEY_FILE, if set. */
export async function provenanceKeyFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<ProvenanceKey | undefined> {
  const file = env.KMATRIX_PROVENANCE_KEY_FILE;
  if (!file) return undefined;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readPem(file, 'KMATRIX_PROVENANCE_KEY_FILE'));
  } catch (error) {
    if (error instanceof KmatrixError) throw error;
    throw new KmatrixError(`KMATRIX_PROVENANCE_KEY_FILE (${file}) is not a PEM private key`, {
      stage: 'publish',
      remedy: 'make one with `openssl genpkey -algorithm ed25519 -out provenance.key`',
    });
  }
  checkKeyType(privateKey, file);
  return { privateKey, keyId: publicKeyId(createPublicKey(privateKey)) };
}

/** A public key (PEM, or the private key it belongs to) for `verify`. */
export async function readPublicKey(file: string, variable: string): Promise<KeyObject> {
  const pem = await readPem(file, variable);
  try {
    const key = createPublicKey(pem);
    checkKeyType(key, file);
    return key;
  } catch (error) {
    if (error instanceof KmatrixError) throw error;
    throw new KmatrixError(`${variable} (${file}) is not a PEM public key`, {
      stage: 'verify',
      remedy: 'export it with `openssl pkey -in provenance.key -pubout -out provenance.pub`',
    });
  }
}

/** The envelope of a statement, signed when a key is given (no signatures otherwise). */
export function envelopeOf(statement: Buffer, key?: ProvenanceKey): Envelope {
  const signatures = key
    ? [
        {
          keyid: key.keyId,
          sig: sign(
            digestFor(key.privateKey),
            preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement),
            key.privateKey,
          ).toString('base64'),
        },
      ]
    : [];
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: statement.toString('base64'), signatures };
}

/** Whether one of the envelope's signatures is `publicKey`'s over its payload. */
export function envelopeSignedBy(envelope: Envelope, publicKey: KeyObject): boolean {
  const message = preAuthEncoding(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
  const keyId = publicKeyId(publicKey);
  return envelope.signatures.some(
    (s) =>
      (s.keyid === undefined || s.keyid === keyId) &&
      verify(digestFor(publicKey), message, publicKey, Buffer.from(s.sig, 'base64')),
  );
}
