/**
 * The S3-compatible backend (AWS S3, MinIO, Ceph RGW, …):
 *   <prefix>/objects/<namespace>/<hash>     body, with x-amz-meta-{sha256,size,created,writer,target}
 *   <prefix>/quarantine/<namespace>/<hash>.<time>
 * Publishing is a PUT with `If-None-Match: *` (first writer wins on stores that honour it, as
 * AWS S3 and MinIO do) after a HEAD; the server also serialises publishes of one key. Last access
 * times for LRU live in the server's memory (S3 metadata cannot change without a copy), seeded
 * from LastModified at start.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { BlobStore, ObjectMeta, StoredObject } from './blob-store.ts';
import { objectKey } from './blob-store.ts';

export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = url.match(/^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/);
  if (!m) throw new Error(`not an S3 location: ${url} (expected s3://bucket/prefix)`);
  return { bucket: m[1]!, prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/** A client for an s3:// location (shared by the cache server and the artifact store). */
export function openS3(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
): { client: S3Client; bucket: string; prefix: string; description: string } {
  const { bucket, prefix } = parseS3Url(url);
  const endpoint = env.KMATRIX_S3_ENDPOINT ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  // Keys in the environment given (not only this process's) are used as such; else the SDK's chain.
  const keys =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {};
  const client = new S3Client({
    ...keys,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Plain signed uploads: the SDK's default streaming checksums (aws-chunked trailers) are not
    // understood by every S3-compatible server; integrity is checked by our own SHA256 anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { client, bucket, prefix, description: `s3://${bucket}/${prefix}${endpoint ? ` at ${endpoint}` : ''}` };
}

/** The HTTP status an S3 call failed with, if it got that far. */
export const s3StatusOf = (error: unknown): number | undefined =>
  (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

export const isStatus = (error: unknown, ...codes: number[]) => codes.includes(s3StatusOf(error) ?? 0);

export class S3Store implements BlobStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly access = new Map<string, string>();
  private tmp = '';

  constructor(url: string, env: NodeJS.ProcessEnv = process.env) {
    const s3 = openS3(url, env);
    this.bucket = s3.bucket;
    this.prefix = s3.prefix;
    this.client = s3.client;
    this.description = s3.description;
  }

  private key(kind: 'objects' | 'quarantine', rest: string): string {
    return [this.prefix, kind, rest].filter(Boolean).join('/');
  }

  async init(): Promise<void> {
    this.tmp = await mkdtemp(join(tmpdir(), 'kmatrix-cache-s3-'));
    // Fail now, with the reason, if the bucket is not reachable.
    await this.client.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.key('objects', ''), MaxKeys: 1 }),
    );
  }

  async tempPath(): Promise<string> {
    await mkdir(this.tmp, { recursive: true });
    return join(this.tmp, `${Date.now()}-${randomBytes(6).toString('hex')}`);
  }

  private metaOf(
    ns: string,
    hash: string,
    m: Record<string, string> | undefined,
    lastModified?: Date,
  ): ObjectMeta | undefined {
    if (!m?.sha256 || !m.size) return undefined;
    const created = m.created ?? lastModified?.toISOString() ?? new Date(0).toISOString();
    return {
      namespace: ns,
      hash,
      sha256: m.sha256,
      size: Number(m.size),
      createdAt: created,
      lastAccess: this.access.get(objectKey(ns, hash)) ?? created,
      writer: m.writer ?? 'unknown',
      ...(m.target ? { target: m.target } : {}),
    };
  }

  async get(ns: string, hash: string): Promise<StoredObject | undefined> {
    let response: GetObjectCommandOutput;
    try {
      response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key('objects', `${ns}/${hash}`) }),
      );
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
    const meta = this.metaOf(ns, hash, response.Metadata, response.LastModified);
    if (!meta || !response.Body) return undefined;
    const file = await this.tempPath();
    await pipeline(response.Body as Readable, createWriteStream(file));
    // No identity: each read is a fresh download, whose bytes are verified every time.
    return { meta, read: () => createReadStream(file), release: () => rm(file, { force: true }) };
  }

  async publish(file: string, meta: ObjectMeta): Promise<'created' | 'exists'> {
    const Key = this.key('objects', `${meta.namespace}/${meta.hash}`);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return 'exists';
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: createReadStream(file),
          ContentLength: meta.size,
          IfNoneMatch: '*',
          Metadata: {
            sha256: meta.sha256,
            size: String(meta.size),
            created: meta.createdAt,
            writer: meta.writer,
            ...(meta.target ? { target: meta.target } : {}),
          },
        }),
      );
    } catch (error) {
      if (isStatus(error, 412, 409)) return 'exists';
      throw error;
    }
    this.access.set(objectKey(meta.namespace, meta.hash), meta.lastAccess);
    await rm(file, { force: true });
    return 'created';
  }

  async quarantine(ns: string, hash: string): Promise<void> {
    const from = this.key('objects', `${ns}/${hash}`);
    const to = this.key('quarantine', `${ns}/${hash}.${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await this.client
      .send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: `${this.bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}`,
        }),
      )
      .catch(() => {});
    await this.remove(ns, hash);
  }

  async remove(ns: string, hash: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key('objects', `${ns}/${hash}`) }));
    this.access.delete(objectKey(ns, hash));
  }

  async touch(meta: ObjectMeta): Promise<void> {
    this.access.set(objectKey(meta.namespace, meta.hash), meta.lastAccess);
  }

  async list(): Promise<ObjectMeta[]> {
    const out: ObjectMeta[] = [];
    const base = this.key('objects', '');
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base ? `${base}/` : '', ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        const [ns, hash] = o.Key!.slice(base.length + 1).split('/');
        if (!ns || !hash) continue;
        const head = await this.client
          .send(new HeadObjectCommand({ Bucket: this.bucket, Key: o.Key! }))
          .catch(() => undefined);
        const meta = head && this.metaOf(ns, hash, head.Metadata, o.LastModified);
        if (meta) out.push(meta);
      }
      // Some S3 implementations send a continuation token on the last page too: trust IsTruncated.
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
}
