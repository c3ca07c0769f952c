/**
 * One file out of a verified package, as bytes, without unpacking the rest (a kernel image
 * package is mostly modules nobody boots). Both package formats the store holds: a .deb through
 * `dpkg-deb | tar`, streamed; an .rpm through our own reader into a scratch folder.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { extractRpm, isRpm } from './rpm.ts';

async function head(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(8);
    await fh.read(buf, 0, 8, 0);
    return buf;
  } finally {
    await fh.close();
  }
}

async function debMember(file: string, member: string): Promise<Buffer> {
  const { execa } = await import('execa');
  const { stdout } = await execa('dpkg-deb', ['--fsys-tarfile', file], { encoding: 'buffer', buffer: false }).pipe(
    'tar',
    ['-xO', `./${member}`],
    {
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
    },
  );
  return Buffer.from(stdout);
}

async function rpmMember(file: string, member: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-'));
  try {
    await extractRpm(file, dir);
    return await readFile(join(dir, member));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `member` is a path inside the package, relative to its root (e.g. boot/vmlinuz-6.1.0-47-amd64). */
export async function packageMember(file: string, member: string, what: string): Promise<Buffer> {
  try {
    return isRpm(await head(file)) ? await rpmMember(file, member) : await debMember(file, member);
  } catch (error) {
    const missing = (error as { code?: string; path?: string }).code === 'ENOENT' && !(error as { path?: string }).path;
    throw new KmatrixError(missing ? '`dpkg-deb` or `tar` is not installed' : `${what} has no ${member}`, {
      stage: 'boot',
      cause: error,
      remedy: missing
        ? 'install them: apt-get install -y dpkg tar'
        : `the package is not the one gen recorded; delete ${file} and run again`,
    });
  }
}
