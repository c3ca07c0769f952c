/**
 * Where published modules live: a directory (default) or S3-compatible object storage, addressed
 * by slash-separated keys. Artifacts are immutable: `putOnce` stores bytes under a free key,
 * accepts the very same bytes again (publishing is idempotent) and refuses different bytes — a
 * published module is never replaced. Only the index (`putMutable`) is rewritten, atomically.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { sha256 } from '../core/hash.ts';
import { KmatrixError } from '../core/errors.ts';
import { withLock } from '../core/file-lock.ts';

export type PutResult = 'stored' | 'same' | 'different';

export interface ArtifactStore {
  readonly description: string;
  get(key: string): Promise<Buffer | undefined>;
  /** Stores bytes under a key that is free; 'same' if it holds these bytes, 'different' (nothing written) otherwise. */
  putOnce(key: string, body: Buffer): Promise<PutResult>;
  /** The object with a version token for `replace`. */
  getVersioned(key: string): Promise<{ body: Buffer; version: string } | undefined>;
  /**
   * Replaces the object in one step (readers see the old or the new bytes, never a mix), but only
   * if it is still at `version` (undefined: still absent): false when another writer came first.
   */
  replace(key: string, body: Buffer, version: string | undefined): Promise<boolean>;
  /** Where a key can be fetched from, for people and for the index. */
  locate(key: string): string;
}

/** Keys are ours (names of targets, modules, digests), but never let one climb out of the store. */
export function checkKey(key: string): void {
  if (!/^[A-Za-z0-9._+~-]+(\/[A-Za-z0-9._+~-]+)*$/.test(key) || key.split('/').some((p) => p === '..' || p === '.')) {
    throw new KmatrixError(`invalid artifact key "${key}"`, { stage: 'publish' });
  }
}

export class DirArtifactStore implements ArtifactStore {
  readonly description: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.description = this.root;
  }

  locate(key: string): string {
    return join(this.root, key);
  }

  async get(key: string): Promise<Buffer | undefined> {
    checkKey(key);
    return readFile(this.locate(key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
  }

  private async temp(key: string, body: Buffer): Promise<string> {
    const path = this.locate(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, body);
    return tmp;
  }

  async putOnce(key: string, body: Buffer): Promise<PutResult> {
    checkKey(key);
    const existing = await this.get(key);
    if (existing) return existing.equals(body) ? 'same' : 'different';
    const tmp = await this.temp(key, body);
    try {
      // link(2) fails if the name exists: of two concurrent publishers exactly one creates the key.
      await link(tmp, this.locate(key));
      return 'stored';
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      return (await this.get(key))?.equals(body) ? 'same' : 'different';
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async getVersioned(key: string): Promise<{ body: Buffer; version: string } | undefined> {
    const body = await this.get(key);
    return body && { body, version: sha256(body) };
  }

  async replace(key: string, body: Buffer, version: string | undefined): Promise<boolean> {
    checkKey(key);
    // Compare and swap under a lock: publishers on one machine (or one shared filesystem).
    return withLock(
      join(this.root, '.locks', `${key.replaceAll('/', '--')}.lock`),
      () => {},
      async () => {
        const current = await this.get(key);
        if ((current ? sha256(current) : undefined) !== version) return false;
        const tmp = await this.temp(key, body);
        await rename(tmp, this.locate(key)).catch(async (error) => {
          await rm(tmp, { force: true });
          throw error;
        });
        return true;
      },
    );
  }
}
