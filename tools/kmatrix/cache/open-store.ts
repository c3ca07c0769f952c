/** The cache server's object store a `--store` value names: a folder, or S3 (loaded only when used). */
import { resolve } from 'node:path';
import type { BlobStore } from './blob-store.ts';
import { DirStore } from './dir-store.ts';

export async function openStore(location: string): Promise<BlobStore> {
  if (location.startsWith('s3://')) {
    const { S3Store } = await import('./s3-store.ts'); // the AWS SDK is only loaded when used
    return new S3Store(location);
  }
  return new DirStore(resolve(location));
}
