/** Test keys, made by openssl and gpg as a user would make them. */
import { mkdir } from 'node:fs/promises';
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

/** A gpg home with one archive signing key, and its public keyring file for gpgv. */
export async function archiveKey(dir: string, name: string): Promise<{ home: string; keyring: string }> {
  const home = join(dir, `${name}-gnupg`);
  await mkdir(home, { mode: 0o700 });
  await execa('gpg', [
    '--batch',
    '--homedir',
    home,
    '--passphrase',
    '',
    '--quick-gen-key',
    `${name} <${name}@example.invalid>`,
    'ed25519',
    'sign',
    'never',
  ]);
  const keyring = join(dir, `${name}.gpg`);
  await execa('gpg', ['--batch', '--homedir', home, '--output', keyring, '--export']);
  return { home, keyring };
}
