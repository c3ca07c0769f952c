/** The artifact store on S3-compatible object storage (see artifact-store.ts for the contract). */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { sha256 } from '../core/hash.ts';
import { KmatrixError } from '../core/errors.ts';
import { isStatus, openS3, s3StatusOf } from '../cache/s3-store.ts';
import { checkKey, type ArtifactStore, type PutResult } from './artifact-store.ts';

export class S3ArtifactStore implements ArtifactStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(url: string, env: NodeJS.ProcessEnv = process.env) {
    const s3 = openS3(url, env);
    this.client = s3.client;
    this.bucket = s3.bucket;
    this.prefix = s3.prefix;
    this.description = s3.description;
  }

  private key(key: string): string {
    checkKey(key);
    return [this.prefix, key].filter(Boolean).join('/');
  }

  locate(key: string): string {
    return `s3://${this.bucket}/${this.key(key)}`;
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  async putOnce(key: string, body: Buffer): Promise<PutResult> {
    const Key = this.key(key);
    const existing = await this.head(key);
    const compare = async () => ((await this.get(key))?.equals(body) ? 'same' : 'different');
    if (existing) return existing.Metadata?.sha256 === sha256(body) ? 'same' : compare();
    try {
      // If-None-Match: * makes a concurrent second writer fail on stores that honour it (AWS S3, MinIO).
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: body,
          IfNoneMatch: '*',
          Metadata: { sha256: sha256(body) },
        }),
      );
      return 'stored';
    } catch (error) {
      if (isStatus(error, 412, 409)) return compare();
      throw error;
    }
  }

  async getVersioned(key: string): Promise<{ body: Buffer; version: string } | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return { body: Buffer.from(await r.Body!.transformToByteArray()), version: r.ETag ?? '' };
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /** The object's metadata, or undefined when there is none. */
  private head(key: string) {
    return this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) })).catch((error) => {
      if (isStatus(error, 404)) return undefined;
      throw error;
    });
  }

  /** The object's ETag now, or undefined when there is none. */
  private async currentVersion(key: string): Promise<string | undefined> {
    return (await this.head(key))?.ETag;
  }

  async replace(key: string, body: Buffer, version: string | undefined): Promise<boolean> {
    // A single PUT replaces an S3 object atomically; If-Match / If-None-Match make it conditional
    // (AWS S3, MinIO and Ceph's RADOS Gateway honour both).
    const put = (condition: { IfMatch: string } | { IfNoneMatch: '*' }) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(key),
          Body: body,
          Metadata: { sha256: sha256(body) },
          ...condition,
        }),
      );
    // 409 (AWS: a competing conditional write is still in flight): lost this round, read again.
    const refused = (error: unknown) => isStatus(error, 412, 500);
    try {
      await put(version ? { IfMatch: version } : { IfNoneMatch: '*' });
      return true;
    } catch (error) {
      if (isStatus(error, 409)) return false;
      if (!refused(error)) throw error;
      // Refused: find out whether someone else wrote (we lost the race) or the store differs.
      if ((await this.currentVersion(key)) !== version) return false;
      // Ceph's RADOS Gateway compares If-Match with the stored ETag without its quotes, so the
      // ETag as S3 returns it ("…") never matches there: the same version, unquoted, once more.
      if (!isStatus(error, 412) || !version || !/^".*"$/.test(version)) throw this.unconditional(key, error);
      try {
        await put({ IfMatch: version.slice(1, -1) });
        return true;
      } catch (retry) {
        if (isStatus(retry, 409)) return false;
        if (!refused(retry) || (await this.currentVersion(key)) === version) throw this.unconditional(key, retry);
        return false;
      }
    }
  }

  /** The object did not change and the store still refused the write: it does not do conditional writes as S3 does. */
  private unconditional(key: string, error: unknown): KmatrixError {
    return new KmatrixError(
      `${this.locate(key)} refused a conditional write (HTTP ${s3StatusOf(error) ?? '?'}) although it had not changed`,
      {
        stage: 'publish',
        remedy:
          'use an S3 store that honours If-Match and If-None-Match on PUT (AWS S3, MinIO, Ceph RGW), or a directory store',
      },
    );
  }
}
