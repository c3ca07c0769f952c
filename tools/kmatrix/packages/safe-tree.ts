/**
 * Writing an archive's members into a folder so that no member can reach outside it: the one
 * writer behind both package formats' unpackers (cpio for .rpm, tar for .deb). kmatrix often runs
 * as root, so a hostile archive must not be able to write anywhere else.
 *
 * - names are relative and stay inside: an absolute name, or one with "..", is refused;
 * - nothing is written behind or through a symlink (`usr -> /elsewhere`, then `usr/file`);
 * - a symlink's target, read as it would be inside the tree mounted at / (where the build sees
 *   it), stays inside: absolute targets are fine, a relative one climbing out of the root is not;
 * - a hard link joins two members of the archive, never a file from outside;
 * - only regular files, folders, symlinks and hard links (the unpackers skip device nodes, FIFOs
 *   and sockets);
 * - permissions only (mode & 0o777): no setuid, setgid or sticky bit, and no owner from the archive.
 *
 * The calls are synchronous: a member is a few system calls, and awaiting each through the thread
 * pool made unpacking a header package of 10,000 small files several times slower than dpkg-deb.
 */
import {
  chmodSync,
  closeSync,
  openSync,
  constants,
  linkSync,
  lstatSync,
  mkdirSync,
  rmSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join, normalize, posix, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A member a hostile or damaged archive holds, refused with the member's name. */
export class UnpackError extends Error {
  readonly member: string;

  constructor(message: string, member: string) {
    super(message);
    this.name = 'UnpackError';
    this.member = member;
  }
}

const WRITE_NOFOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

export class SafeTree {
  private readonly dest: string;
  /** Folders already found to be real folders (not symlinks) below dest. */
  private readonly realDirs = new Set<string>();
  /** Read once (reading it sets it twice; nothing else runs in between on this thread). */
  private readonly umask = process.umask();
  /** The symlinks made, for the check once every member is written. */
  private readonly links: string[] = [];

  /** `dest` must exist; it is the root of everything written. */
  constructor(dest: string) {
    this.dest = dest;
  }

  /** The member's relative path, or undefined for the root itself ("." or "./"). */
  name(raw: string): string | undefined {
    const name = normalize(raw.replace(/^\.?\/+/, ''));
    if (name === '.' || name === '') return undefined;
    // A leading "/" is stripped above: an absolute name is rooted at the destination, as tar does.
    if (name.startsWith('/') || name === '..' || name.startsWith('../') || raw.includes('\0'))
      throw new UnpackError(`archive member "${raw}" points outside the destination`, raw);
    return name.replace(/\/+$/, '');
  }

  dir(name: string, mode = 0o755): void {
    const path = this.place(name);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) mkdirSync(path, { recursive: true });
    else if (!st.isDirectory()) throw new UnpackError(`archive member "${name}" replaces a file with a folder`, name);
    chmodSync(path, (mode & 0o777) | 0o700);
    this.realDirs.add(path);
  }

  /** A file from bytes (written at once) or a stream (a big member, never held in memory). */
  async file(name: string, data: Buffer | Readable, mode: number): Promise<void> {
    const path = this.place(name);
    if (lstatSync(path, { throwIfNoEntry: false })?.isDirectory())
      throw new UnpackError(`archive member "${name}" replaces a folder with a file`, name);
    const perm = mode & 0o777;
    // O_NOFOLLOW: even if something made the name a symlink since place() looked, open refuses it.
    if (Buffer.isBuffer(data)) {
      const fd = openSync(path, WRITE_NOFOLLOW, perm);
      try {
        writeFileSync(fd, data);
      } finally {
        closeSync(fd);
      }
    } else {
      const handle = await open(path, WRITE_NOFOLLOW, perm);
      await pipeline(data, handle.createWriteStream());
    }
    // The mode open() was given passed through the umask; the archive's permissions are wanted.
    if ((perm & this.umask) !== 0) chmodSync(path, perm);
  }

  symlink(name: string, target: string): void {
    if (target.includes('\0')) throw new UnpackError(`symlink "${name}" has a NUL in its target`, name);
    // Inside the tree mounted at /: an absolute target stays in it; a relative one must too.
    if (!target.startsWith('/')) {
      const resolved = posix.normalize(posix.join(posix.dirname(name.split(sep).join('/')), target));
      if (resolved === '..' || resolved.startsWith('../'))
        throw new UnpackError(`symlink "${name}" -> "${target}" climbs out of the tree`, name);
    }
    const path = this.place(name);
    rmSync(path, { force: true });
    symlinkSync(target, path);
    this.links.push(name);
  }

  /**
   * After the last member: each symlink, followed through the tree link by link (absolute targets
   * from the tree's root, as the build sees them), stays inside. One link alone can look harmless
   * (`a/l -> ..`, then `b/x -> ../a/l/..`); only the chain climbs out.
   */
  checkLinks(): void {
    for (const name of this.links) this.followInside(name);
  }

  private followInside(name: string): void {
    const resolved: string[] = [];
    const pending = name.split(sep);
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (resolved.length === 0)
          throw new UnpackError(`symlink "${name}", followed through the tree, climbs out of it`, name);
        resolved.pop();
        continue;
      }
      const path = join(this.dest, ...resolved, part);
      if (!lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) {
        resolved.push(part);
        continue;
      }
      // Past 40 links the kernel gives up with ELOOP, and so does this.
      if (++hops > 40) throw new UnpackError(`symlink "${name}" is a loop`, name);
      const target = readlinkSync(path);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...target.split('/'));
    }
  }

  /** A hard link to `existing`, a member written before. */
  hardlink(name: string, existing: string): void {
    const from = this.name(existing);
    if (!from) throw new UnpackError(`hard link "${name}" to the destination itself`, name);
    const source = this.place(from);
    if (!lstatSync(source, { throwIfNoEntry: false })?.isFile())
      throw new UnpackError(`hard link "${name}" -> "${existing}": no such file earlier in the archive`, name);
    const path = this.place(name);
    rmSync(path, { force: true });
    linkSync(source, path);
  }

  /**
   * The member's absolute path, its parent folders made, once it is known that none of them (below
   * dest) is a symlink and the member itself is not one: writing there stays inside.
   */
  private place(name: string): string {
    let dir = this.dest;
    for (const part of name.split(sep).slice(0, -1)) {
      dir = join(dir, part);
      if (this.realDirs.has(dir)) continue;
      const st = lstatSync(dir, { throwIfNoEntry: false });
      const shown = dir.slice(this.dest.length + 1);
      if (st?.isSymbolicLink())
        throw new UnpackError(`archive member "${name}" lies behind the symlink "${shown}"`, name);
      if (st && !st.isDirectory())
        throw new UnpackError(`archive member "${name}" lies behind the file "${shown}"`, name);
      if (!st) mkdirSync(dir);
      this.realDirs.add(dir);
    }
    const path = join(this.dest, name);
    if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink())
      throw new UnpackError(`archive member "${name}" would be written through a symlink`, name);
    return path;
  }
}
