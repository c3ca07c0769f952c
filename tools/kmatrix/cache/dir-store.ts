/**
 * The local-directory backend:
 *   objects/<namespace>/<hash>        the body (read-only)
 *   objects/<namespace>/<hash>.json   its metadata (sha256, size, writer, times)
 *   quarantine/<namespace>/<hash>.<time>[.json]   bodies that failed verification
 *   tmp/                              uploads in progress
 * A body is published with link(2), which fails if the name exists: first writer wins, nobody
 * overwrites. Metadata is written after the body; a body without metadata is not served.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { type BigIntStats, existsSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from '../core/atomic-file.ts';
import type { BlobStore, ObjectMeta, StoredObject } from './blob-store.ts';

export class DirStore implements BlobStore {
  readonly description: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = root;
    this.description = `directory ${root}`;
  }

  private body(ns: string, hash: string): string {
    return join(this.root, 'objects', ns, hash);
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'objects'), { recursive: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    // Uploads that were in flight when the server last stopped never became objects.
    for (const f of await readdir(join(this.root, 'tmp'))) await rm(join(this.root, 'tmp', f), { force: true });
  }

  async tempPath(): Promise<string> {
    return join(this.root, 'tmp', `${Date.now()}-${randomBytes(6).toString('hex')}`);
  }

  async get(ns: string, hash: string, known?: ObjectMeta): Promise<StoredObject | undefined> {
    // The reader holds the body open: eviction (or a quarantine) may unlink or move the object
    // while it is being verified and sent; the open inode's bytes stay readable until release.
    // (A hard link per reader did the same with three more file-system calls per GET.)
    let meta: ObjectMeta;
    let body: FileHandle;
    try {
      meta = known ?? (JSON.parse(await readFile(`${this.body(ns, hash)}.json`, 'utf8')) as ObjectMeta);
      body = await open(this.body(ns, hash), 'r');
    } catch {
      return undefined; // not there, or removed a moment ago: a miss
    }
    return {
      meta,
      identity: identityOf(await body.stat({ bigint: true })),
      read: () => body.createReadStream({ start: 0, autoClose: false }),
      release: () => body.close(),
    };
  }

  async identify(ns: string, hash: string): Promise<string | undefined> {
    return stat(this.body(ns, hash), { bigint: true }).then(identityOf, () => undefined);
  }

  async publish(file: string, meta: ObjectMeta): Promise<'created' | 'exists'> {
    // A few metadata calls of microseconds each, made synchronously: as promises each waited its
    // turn in the thread pool and the event loop, and with 200 clients at once a PUT spent 200 ms
    // queueing for well under a millisecond of work. (This store is a local directory.)
    const target = this.body(meta.namespace, meta.hash);
    mkdirSync(join(this.root, 'objects', meta.namespace), { recursive: true });
    try {
      linkSync(file, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A body without metadata is left over from a crash mid-publish (the server serialises
      // publishes of one key, so it is not a live one): replace it.
      if (existsSync(`${target}.json`)) return 'exists';
      rmSync(target, { force: true });
      linkSync(file, target);
    }
    writeFileAtomicSync(`${target}.json`, `${JSON.stringify(meta)}\n`);
    rmSync(file, { force: true });
    return 'created';
  }

  async quarantine(ns: string, hash: string, reason: string): Promise<void> {
    const dir = join(this.root, 'quarantine', ns);
    await mkdir(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const meta = await readFile(`${this.body(ns, hash)}.json`, 'utf8').catch(() => '{}');
    await writeFileAtomic(
      join(dir, `${hash}.${stamp}.json`),
      `${JSON.stringify({ ...JSON.parse(meta), quarantined: reason })}\n`,
    );
    await rename(this.body(ns, hash), join(dir, `${hash}.${stamp}`)).catch(() => {});
    await rm(`${this.body(ns, hash)}.json`, { force: true });
  }

  async remove(ns: string, hash: string): Promise<void> {
    await rm(`${this.body(ns, hash)}.json`, { force: true });
    await rm(this.body(ns, hash), { force: true });
  }

  async touch(meta: ObjectMeta): Promise<void> {
    await writeFileAtomic(`${this.body(meta.namespace, meta.hash)}.json`, `${JSON.stringify(meta)}\n`).catch(() => {});
  }

  async list(): Promise<ObjectMeta[]> {
    const out: ObjectMeta[] = [];
    const objects = join(this.root, 'objects');
    for (const ns of await readdir(objects).catch(() => [] as string[])) {
      for (const f of await readdir(join(objects, ns)).catch(() => [] as string[])) {
        if (!f.endsWith('.json')) continue;
        try {
          out.push(JSON.parse(await readFile(join(objects, ns, f), 'utf8')) as ObjectMeta);
        } catch {
          // being rewritten: it will be there next time
        }
      }
    }
    return out;
  }
}

/**
 * Any write to the bytes changes mtime and ctime (nanoseconds); a replaced body has another inode.
 * mtime can be set back (utimes), ctime cannot. Publishing (link, then unlinking the upload)
 * changes ctime too, but before any GET.
 */
function identityOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}
