/** Test keys, made by openssl as a user would make them. */
import { join } from 'node:path';
import { execa } from 'execa';

/** A module signing key and its self-signed certificate, for KMATRIX_SIGN_KEY_FILE/_CERT_FILE. */
export async function signingKey(
  dir: string,
  name: string,
): Promise<{ KMATRIX_SIGN_KEY_FILE: string; KMATRIX_SIGN_CERT_FILE: string }> {
  const key = join(dir, `${name}.key.pem`);
  const cert = join(dir, `${name}.cert.pem`);
  await execa('openssl', [
    'req',
    '-new',
    '-nodes',
    '-utf8',
    '-sha256',
    '-days',
    '36500',
    '-batch',
    '-x509',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'subjectKeyIdentifier=hash',
    '-out',
    cert,
    '-keyout',
    key,
  ]);
  return { KMATRIX_SIGN_KEY_FILE: key, KMATRIX_SIGN_CERT_FILE: cert };
}

/** An Ed25519 provenance key pair: the private key (KMATRIX_PROVENANCE_KEY_FILE) and its public key. */
export async function provenanceKey(dir: string, name: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, `${name}.provenance.key`);
  const pub = join(dir, `${name}.provenance.pub`);
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
  await execa('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
  return { key, pub };
}
