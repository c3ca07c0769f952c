/**
 * Signature checks with gpgv (the verify-only half of GnuPG, which apt itself uses): a keyring
 * file decides which keys are trusted, and for a clearsigned file only the text gpgv says was
 * signed is returned (a clearsigned file can carry unsigned text around the signed part).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from './errors.ts';

/** A signature gpgv did not accept: which file, against which keyring, and gpgv's last words. */
export class SignatureError extends KmatrixError {
  readonly url: string;
  readonly keyring: string;
  constructor(url: string, keyring: string, gpgvSays: string, remedy: string) {
    super(`${url} has no valid signature by a key in ${keyring} (${gpgvSays}); nothing was written`, {
      stage: 'crawl',
      remedy,
    });
    this.url = url;
    this.keyring = keyring;
  }
}

/**
 * The signed text of `data`: clearsigned when there is no `signature`, else checked against that
 * detached signature (ASCII-armoured or binary). `remedy` is what to do when the check fails.
 */
export async function gpgvVerified(
  keyring: string,
  url: string,
  files: { data: Buffer; signature?: Buffer },
  remedy: string,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-gpgv-'));
  try {
    await writeFile(join(dir, 'data'), files.data);
    const args = ['--keyring', keyring];
    if (files.signature) {
      await writeFile(join(dir, 'data.sig'), files.signature);
      args.push(join(dir, 'data.sig'), join(dir, 'data'));
    } else args.push('--output', join(dir, 'signed'), join(dir, 'data'));
    const r = await execa('gpgv', args, { reject: false, all: true });
    if ((r as { code?: string }).code === 'ENOENT' || r.exitCode === undefined)
      throw new KmatrixError('`gpgv` is not installed', {
        stage: 'crawl',
        remedy: 'install it: apt-get install -y gpgv',
      });
    if (r.exitCode !== 0) {
      const said = (r.all ?? '').split('\n').filter(Boolean).slice(-2).join('; ');
      throw new SignatureError(url, keyring, said, remedy);
    }
    return files.signature ? files.data.toString('utf8') : await readFile(join(dir, 'signed'), 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
