/**
 * Module signing, done at publish time on top of the cached build (the unsigned .ko stays the
 * reproducible artifact): the kernel's own `scripts/sign-file` from the target's kbuild package,
 * with a key and certificate from the environment. A signed module is the unsigned bytes, a
 * PKCS#7 signature, a `struct module_signature` and the magic string — so the unsigned bytes can
 * always be recovered and checked against the provenance.
 */
import { familyOfHeaders } from '../distros/registry.ts';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';
import type { HeaderStore } from '../packages/store.ts';
import type { Target } from '../model/target.ts';

const MAGIC = Buffer.from('~Module signature appended~\n');
/** struct module_signature: algo, hash, id_type, signer_len, key_id_len, pad[3], be32 sig_len. */
const INFO_SIZE = 12;
const PKEY_ID_PKCS7 = 2;

export interface Signature {
  /** The module without its signature. */
  content: Buffer;
  /** DER PKCS#7 / CMS SignedData. */
  pkcs7: Buffer;
}

/** The appended signature of a module, or undefined for an unsigned one. */
export function splitSignature(ko: Buffer): Signature | undefined {
  if (ko.length < MAGIC.length + INFO_SIZE || !ko.subarray(ko.length - MAGIC.length).equals(MAGIC)) return undefined;
  const info = ko.subarray(ko.length - MAGIC.length - INFO_SIZE, ko.length - MAGIC.length);
  const sigLen = info.readUInt32BE(8);
  const end = ko.length - MAGIC.length - INFO_SIZE;
  if (info[2] !== PKEY_ID_PKCS7 || sigLen > end) {
    throw new KmatrixError("the module's signature trailer is malformed", {
      stage: 'verify',
      remedy: 'the file is damaged or was not signed by scripts/sign-file; fetch it again',
    });
  }
  return { content: ko.subarray(0, end - sigLen), pkcs7: ko.subarray(end - sigLen, end) };
}

export interface SigningKey {
  keyFile: string;
  certFile: string;
  hash: string;
}

/** KMATRIX_SIGN_KEY_FILE + KMATRIX_SIGN_CERT_FILE (PEM), or undefined when publishing does not sign. */
export function signingKeyFromEnv(env: NodeJS.ProcessEnv = process.env): SigningKey | undefined {
  const keyFile = env.KMATRIX_SIGN_KEY_FILE;
  const certFile = env.KMATRIX_SIGN_CERT_FILE;
  if (!keyFile && !certFile) return undefined;
  if (!keyFile || !certFile) {
    throw new KmatrixError('module signing needs both KMATRIX_SIGN_KEY_FILE and KMATRIX_SIGN_CERT_FILE', {
      stage: 'publish',
      remedy: 'set both (the private key and its X.509 certificate, PEM), or neither to publish unsigned',
    });
  }
  return { keyFile, certFile, hash: env.KMATRIX_SIGN_HASH ?? 'sha256' };
}

async function openssl(args: string[], what: string): Promise<string> {
  try {
    return (await execa('openssl', args)).stdout;
  } catch (error) {
    const e = error as { code?: string; stderr?: string };
    throw new KmatrixError(
      e.code === 'ENOENT' ? '`openssl` is not installed' : `${what}: ${(e.stderr ?? '').trim().split('\n')[0]}`,
      {
        stage: 'verify',
        remedy:
          e.code === 'ENOENT'
            ? 'apt-get install -y openssl'
            : 'check the certificate file is the one the module was signed with (PEM X.509)',
      },
    );
  }
}

/** The certificate's subject key identifier, which is how a kernel keyring names the key. */
export async function keyIdOf(certFile: string): Promise<string> {
  const text = await openssl(
    ['x509', '-in', certFile, '-noout', '-ext', 'subjectKeyIdentifier'],
    `cannot read certificate ${certFile}`,
  );
  const id = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^[0-9A-F]{2}(:[0-9A-F]{2})+$/i.test(l));
  return id?.replace(/:/g, '').toLowerCase() ?? 'none';
}

/** The kernel's own module-signing tool, from its header packages, runnable on this machine. */
async function signFileOf(target: Target, store: HeaderStore): Promise<string> {
  const host = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  const tool = familyOfHeaders(target.headers).signingTool(target.headers, host, target.arch);
  if ('why' in tool)
    throw new KmatrixError(`${target.name} cannot be signed: ${tool.why}`, {
      stage: 'publish',
      target: target.name,
      remedy:
        'publish without KMATRIX_SIGN_KEY_FILE, or add the missing package to the kernel list and run `npx kmatrix gen`',
    });
  const tree = await store.tree(tool.package);
  const found = await execa('find', [tree, '-path', tool.pathPattern, '-type', 'f']).then(
    (r) => r.stdout.split('\n').filter(Boolean)[0],
  );
  if (!found)
    throw new KmatrixError(`${tool.package.name} ${tool.package.version} has no ${tool.pathPattern}`, {
      stage: 'publish',
      target: target.name,
    });
  return found;
}

export async function signModule(ko: Buffer, target: Target, store: HeaderStore, key: SigningKey): Promise<Buffer> {
  const signFile = await signFileOf(target, store);
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-sign-'));
  try {
    const file = join(dir, 'module.ko');
    await writeFile(file, ko);
    await execa(signFile, [key.hash, key.keyFile, key.certFile, file]).catch((error: { stderr?: string }) => {
      throw new KmatrixError(
        `scripts/sign-file failed for ${target.name}: ${(error.stderr ?? '').trim().split('\n').slice(0, 3).join(' ')}`,
        {
          stage: 'publish',
          target: target.name,
          remedy:
            'check KMATRIX_SIGN_KEY_FILE / KMATRIX_SIGN_CERT_FILE are a matching PEM key and X.509 certificate (and libcrypto is installed)',
        },
      );
    });
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Checks the PKCS#7 signature over the module's content with the given certificate. */
export async function checkSignature(sig: Signature, certFile: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-verify-'));
  try {
    await writeFile(join(dir, 'sig.der'), sig.pkcs7);
    await writeFile(join(dir, 'content'), sig.content);
    // -noverify: the certificate is the trust anchor given, not a chain to a CA; -nointern: only it.
    await openssl(
      [
        'cms',
        '-verify',
        '-binary',
        '-inform',
        'DER',
        '-in',
        join(dir, 'sig.der'),
        '-content',
        join(dir, 'content'),
        '-certfile',
        certFile,
        '-nointern',
        '-noverify',
        '-out',
        '/dev/null',
      ],
      'signature does not verify',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
