/** A real S3-compatible server (s3rver) on 127.0.0.1 with one bucket, removed when the test ends. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import S3rver from 's3rver';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export interface TestS3 {
  /** Environment for kmatrix to reach it (endpoint and credentials). */
  env: NodeJS.ProcessEnv;
  client: S3Client;
  /** Its data folder (scratch space that goes away with it). */
  dir: string;
}

export async function startS3(t: TestContext, bucket: string): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-s3-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir });
  const { port } = (await s3.run()) as { port: number };
  t.after(() => s3.close());
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    env: {
      KMATRIX_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    },
    client,
    dir,
  };
}
