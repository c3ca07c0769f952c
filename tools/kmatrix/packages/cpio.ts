/**
 * Extracting a cpio "newc" archive (the payload of an .rpm) into a folder, in JS: the format is
 * parsed here, and every member is written by SafeTree, which keeps it inside the destination
 * (no "..", nothing behind or through a symlink, no devices, no setuid bits).
 */
import { UnpackError, SafeTree } from './safe-tree.ts';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** A damaged or hostile cpio archive (the refused member, when there is one, is in the message). */
export class CpioError extends Error {}

const pad4 = (n: number) => (n + 3) & ~3;

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  rawName: string;
  dataStart: number;
  dataEnd: number;
  next: number;
}

function header(archive: Buffer, at: number): Header {
  if (at + 110 > archive.length) throw new CpioError('archive ends before its TRAILER!!! entry (truncated?)');
  const magic = archive.toString('latin1', at, at + 6);
  if (magic !== '070701' && magic !== '070702') {
    throw new CpioError(
      magic === '07070X'
        ? 'stripped cpio (rpm with 64-bit file sizes) is not supported'
        : `not a cpio newc archive (magic "${magic}" at byte ${at})`,
    );
  }
  const field = (i: number) => {
    const text = archive.toString('latin1', at + 6 + i * 8, at + 14 + i * 8);
    if (!/^[0-9a-fA-F]{8}$/.test(text)) throw new CpioError(`damaged header at byte ${at}`);
    return Number.parseInt(text, 16);
  };
  const [ino, mode, nlink, size, namesize] = [field(0), field(1), field(4), field(6), field(11)];
  const nameStart = at + 110;
  if (namesize < 1 || nameStart + namesize > archive.length) throw new CpioError(`damaged name at byte ${at}`);
  const rawName = archive.toString('utf8', nameStart, nameStart + namesize - 1);
  const dataStart = pad4(nameStart + namesize);
  const dataEnd = dataStart + size;
  if (dataEnd > archive.length) throw new CpioError(`archive ends inside "${rawName}" (truncated?)`);
  return { ino, mode, nlink, rawName, dataStart, dataEnd, next: pad4(dataEnd) };
}

/** Writes every member of `archive` under `dest` (which must exist). Returns the number of files. */
export async function extractCpio(archive: Buffer, dest: string): Promise<number> {
  const tree = new SafeTree(dest);
  let files = 0;
  // newc stores a hard-linked file's data with its last link only.
  const pendingLinks = new Map<string, string[]>();
  try {
    for (let at = 0; ; ) {
      const h = header(archive, at);
      at = h.next;
      if (h.rawName === 'TRAILER!!!') break;
      const name = tree.name(h.rawName);
      if (!name) continue;
      const type = h.mode & S_IFMT;
      const data = archive.subarray(h.dataStart, h.dataEnd);
      if (type === S_IFDIR) await tree.dir(name, h.mode);
      else if (type === S_IFLNK) await tree.symlink(name, data.toString('utf8'));
      else if (type === S_IFREG) {
        const key = String(h.ino);
        if (h.nlink > 1 && data.length === 0) {
          pendingLinks.set(key, [...(pendingLinks.get(key) ?? []), name]);
          continue;
        }
        await tree.file(name, data, h.mode);
        files++;
        for (const other of pendingLinks.get(key) ?? []) {
          await tree.hardlink(other, name);
          files++;
        }
        pendingLinks.delete(key);
      }
      // device nodes, FIFOs and sockets have no place in a package's tree: never created
    }
    tree.checkLinks();
  } catch (error) {
    if (error instanceof UnpackError) throw new CpioError(error.message);
    throw error;
  }
  return files;
}
