/**
 * Extracting a cpio "newc" archive (the payload of an .rpm) into a folder, in JS. Only regular
 * files, folders and symlinks are created, without setuid, setgid or sticky bits; every name must
 * stay inside the destination: an archive naming ../ or an absolute path is refused, and so is a
 * member that lies behind a symlink the archive made (`usr -> /elsewhere`, then `usr/file`) or
 * that would be written through one. Symlinks themselves may point anywhere: they are never followed here.
 */
import { chmod, link, lstat, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export class CpioError extends Error {}

const pad4 = (n: number) => (n + 3) & ~3;

function safeName(raw: string): string | undefined {
  const name = normalize(raw.replace(/^\.?\/+/, ''));
  if (name === '.' || name === '') return undefined;
  if (name.startsWith('/') || name === '..' || name.startsWith('../'))
    throw new CpioError(`archive member "${raw}" points outside the destination`);
  return name;
}

/**
 * Refuses a member whose parent folders (below `dest`) include a symlink, or whose own path is
 * one: writing there would land outside the destination. Folders found real are remembered.
 */
async function assertNotBehindSymlink(dest: string, name: string, realDirs: Set<string>): Promise<void> {
  const parts = name.split(sep);
  let dir = dest;
  for (const part of parts.slice(0, -1)) {
    dir = join(dir, part);
    if (realDirs.has(dir)) continue;
    const st = await lstat(dir).catch(() => undefined);
    if (st?.isSymbolicLink())
      throw new CpioError(`archive member "${name}" lies behind the symlink "${dir.slice(dest.length + 1)}"`);
    if (st?.isDirectory()) realDirs.add(dir);
  }
  const own = await lstat(join(dest, name)).catch(() => undefined);
  if (own?.isSymbolicLink()) throw new CpioError(`archive member "${name}" would be written through a symlink`);
}

/** Writes every member of `archive` under `dest` (which must exist). Returns the number of files. */
export async function extractCpio(archive: Buffer, dest: string): Promise<number> {
  let at = 0;
  let files = 0;
  const realDirs = new Set<string>();
  // newc stores a hard-linked file's data with its last link only.
  const pendingLinks = new Map<string, string[]>();
  for (;;) {
    if (at + 110 > archive.length) throw new CpioError('archive ends before its TRAILER!!! entry (truncated?)');
    const magic = archive.toString('latin1', at, at + 6);
    if (magic !== '070701' && magic !== '070702') {
      throw new CpioError(
        magic === '07070X'
          ? 'stripped cpio (rpm with 64-bit file sizes) is not supported'
          : `not a cpio newc archive (magic "${magic}" at byte ${at})`,
      );
    }
    const field = (i: number) => parseInt(archive.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const [ino, mode, nlink, size, namesize] = [field(0), field(1), field(4), field(6), field(11)];
    const nameStart = at + 110;
    const rawName = archive.toString('utf8', nameStart, nameStart + namesize - 1);
    const dataStart = pad4(nameStart + namesize);
    const dataEnd = dataStart + size;
    if (dataEnd > archive.length) throw new CpioError(`archive ends inside "${rawName}" (truncated?)`);
    at = pad4(dataEnd);
    if (rawName === 'TRAILER!!!') break;
    const name = safeName(rawName);
    if (!name) continue;
    await assertNotBehindSymlink(dest, name, realDirs);
    const path = join(dest, name);
    const type = mode & S_IFMT;
    if (type === S_IFDIR) {
      await mkdir(path, { recursive: true });
      continue;
    }
    await mkdir(dirname(path), { recursive: true });
    if (type === S_IFLNK) {
      await symlink(archive.toString('utf8', dataStart, dataEnd), path);
    } else if (type === S_IFREG) {
      const key = String(ino);
      if (nlink > 1 && size === 0) {
        pendingLinks.set(key, [...(pendingLinks.get(key) ?? []), path]);
        continue;
      }
      await writeFile(path, archive.subarray(dataStart, dataEnd), { mode: mode & 0o777 });
      await chmod(path, mode & 0o777);
      files++;
      for (const other of pendingLinks.get(key) ?? []) {
        await link(path, other);
        files++;
      }
      pendingLinks.delete(key);
    }
    // device nodes, fifos and sockets have no place in a header tree: skipped
  }
  return files;
}
