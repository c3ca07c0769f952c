/**
 * Where the cache server keeps objects: one small interface, two backends (a local directory,
 * S3-compatible object storage). Bodies arrive as a local temp file whose SHA256 and size the
 * server has already computed; `publish` makes it visible atomically and only if the key is free.
 */
import type { Readable } from 'node:stream';
export interface ObjectMeta {
  namespace: string;
  hash: string;
  sha256: string;
  size: number;
  /** ISO time of the PUT */
  createdAt: string;
  /** ISO time of the last GET (or the PUT): what LRU eviction orders by */
  lastAccess: string;
  /** Name of the token that wrote it (never the token itself) */
  writer: string;
  /** Nx project the entry is for, when the server could tell from the archive */
  target?: string;
}

export interface StoredObject {
  meta: ObjectMeta;
  /** The body from its first byte, as often as needed until release() (for S3: a temp copy). */
  read(): Readable;
  /**
   * What changes whenever the stored bytes may have changed: (device, inode, size, mtime, ctime)
   * of a local body. The server hashes a body again when this differs from what it last
   * verified, and at least every reverifyMs. Absent (S3: every read is a fresh download): verified
   * on every read, and never kept in memory.
   */
  identity?: string;
  release(): Promise<void>;
}

export interface BlobStore {
  readonly description: string;
  init(): Promise<void>;
  /**
   * A fresh local path for an upload in progress (same filesystem as the store when local). The
   * server creates it read-only (0444): once published, a local body is never written again.
   */
  tempPath(): Promise<string>;
  /** `known`: the metadata the caller already holds for this key (a local store need not read it again). */
  get(namespace: string, hash: string, known?: ObjectMeta): Promise<StoredObject | undefined>;
  /**
   * The identity the stored body has now, as `get` would report it, without opening it (one
   * stat); undefined when it is gone. Absent where bodies have no identity.
   */
  identify?(namespace: string, hash: string): Promise<string | undefined>;
  /** 'exists' when the key is taken: the temp file is then left to the caller to delete. */
  publish(file: string, meta: ObjectMeta): Promise<'created' | 'exists'>;
  /** Moves a damaged object out of the way (kept for inspection) so the key can be written again. */
  quarantine(namespace: string, hash: string, reason: string): Promise<void>;
  remove(namespace: string, hash: string): Promise<void>;
  touch(meta: ObjectMeta): Promise<void>;
  list(): Promise<ObjectMeta[]>;
}

export const objectKey = (namespace: string, hash: string) => `${namespace}/${hash}`;
