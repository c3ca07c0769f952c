/**
 * A .deb's files, unpacked safely. dpkg-deb reads the ar container and decompresses data.tar.*
 * (whichever compressor the archive chose); node-tar's parser reads the tar stream (ustar, GNU
 * long names, pax headers); every member is written by SafeTree, which keeps it inside the
 * destination. Not `dpkg-deb -x` (GNU tar as root creates device nodes, keeps setuid bits and
 * owners) and not node-tar's own extractor (it rewrites absolute symlink targets, which header
 * packages rely on: /lib/modules/<release>/build -> /usr/src/…).
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { SafeTree, UnpackError } from './safe-tree.ts';

/** What a .deb's payload cannot be unpacked as (a refused member, a damaged archive). */
export class DebError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DebError';
  }
}

const SMALL_FILE = 1024 * 1024;

async function writeEntry(tree: SafeTree, entry: ReadEntry): Promise<void> {
  const name = tree.name(entry.path);
  if (!name) return void entry.resume();
  const mode = entry.mode ?? 0o644;
  switch (entry.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      // Most files of a header package are small: one write each, no stream to set up.
      return tree.file(name, entry.size <= SMALL_FILE ? await entry.concat() : (entry as unknown as Readable), mode);
    case 'Directory':
      entry.resume();
      return tree.dir(name, mode);
    case 'SymbolicLink':
      entry.resume();
      return tree.symlink(name, entry.linkpath ?? '');
    case 'Link':
      entry.resume();
      return tree.hardlink(name, entry.linkpath ?? '');
    default:
      // device nodes, FIFOs and the like have no place in a package's tree: never created
      entry.resume();
  }
}

/** Unpacks a tar stream under `dest` (which must exist), one member after another. */
export async function extractTar(input: Readable, dest: string): Promise<void> {
  const tree = new SafeTree(dest);
  let chain: Promise<void> = Promise.resolve();
  let failed: unknown;
  const parser = new Parser({
    strict: true,
    // Members are written in archive order (a symlink before what lies behind it matters); the
    // parser waits while one is written, so a big archive is never held in memory.
    onReadEntry: (entry: ReadEntry) => {
      entry.pause();
      chain = chain
        .then(() => (failed ? void entry.resume() : writeEntry(tree, entry)))
        .catch((error: unknown) => {
          failed ??= error;
          entry.resume();
        });
    },
  });
  try {
    await pipeline(input, parser);
    await chain;
    if (!failed) tree.checkLinks();
  } catch (error) {
    failed ??= error;
  }
  if (failed instanceof UnpackError) throw new DebError(failed.message);
  // The machine's problems (a full disk) stay what they are.
  if (/^E[A-Z]+$/.test((failed as NodeJS.ErrnoException | undefined)?.code ?? '')) throw failed;
  if (failed) throw new DebError(`damaged tar data: ${(failed as Error).message}`);
}

export async function extractDeb(file: string, dest: string): Promise<void> {
  // execa is loaded here, not at the top: every build imports the store, few unpack.
  const { execa } = await import('execa');
  const dpkg = execa('dpkg-deb', ['--fsys-tarfile', file], { encoding: 'buffer', buffer: { stdout: false } });
  const [unpacked, exited] = await Promise.allSettled([extractTar(dpkg.stdout, dest), dpkg]);
  const error =
    exited.status === 'rejected'
      ? (exited.reason as NodeJS.ErrnoException & { stderr?: Buffer | string; signal?: string })
      : undefined;
  // The machine's problems (no dpkg-deb) stay what they are.
  if (error && /^E[A-Z]+$/.test(error.code ?? '')) throw error;
  // dpkg-deb killed by a closed pipe only says the tar reader stopped first: its reason is the one.
  const brokenPipe = error?.signal === 'SIGPIPE' || /broken pipe/i.test(error?.stderr?.toString() ?? '');
  if (error && !brokenPipe) throw new DebError(error.stderr?.toString().trim() || error.message);
  if (unpacked.status === 'rejected') throw unpacked.reason;
  if (error) throw new DebError(error.stderr?.toString().trim() || error.message);
}
