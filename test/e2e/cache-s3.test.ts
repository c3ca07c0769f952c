/**
 * The S3 backend against a real S3-compatible server (s3rver) on 127.0.0.1: the same protocol,
 * integrity and first-writer-wins behaviour as the directory store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { READ_TOKEN, WRITE_TOKEN, startCacheServer } from '../support/cache-server.ts';
import { startS3 } from '../support/s3.ts';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

test('the cache server stores in S3-compatible storage, verifies, quarantines and survives a restart', {
  timeout: 120_000,
}, async (t) => {
  const { env, client } = await startS3(t, 'kmx-cache');

  let server = await startCacheServer('s3://kmx-cache/nx', [], env);
  t.after(() => server.stop());
  const body = Buffer.alloc(300_000, 7);
  assert.equal(
    (await fetch(`${server.url}/v1/cache/42`, { method: 'PUT', headers: auth(WRITE_TOKEN), body })).status,
    200,
  );
  const stored = await client.send(new GetObjectCommand({ Bucket: 'kmx-cache', Key: 'nx/objects/main/42' }));
  assert.equal(stored.Metadata?.size, String(body.length));
  const got = await fetch(`${server.url}/v1/cache/42`, { headers: auth(READ_TOKEN) });
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), body);
  assert.equal(
    (await fetch(`${server.url}/v1/cache/42`, { method: 'PUT', headers: auth(WRITE_TOKEN), body: 'again' })).status,
    409,
  );

  // After a restart the server still knows what is stored.
  await server.stop();
  server = await startCacheServer('s3://kmx-cache/nx', [], env);
  assert.equal(
    (await fetch(`${server.url}/v1/cache/42`, { method: 'PUT', headers: auth(WRITE_TOKEN), body: 'again' })).status,
    409,
  );

  // Someone replaces the bytes behind the server's back (keeping its metadata): refused and quarantined.
  await client.send(
    new PutObjectCommand({
      Bucket: 'kmx-cache',
      Key: 'nx/objects/main/42',
      Body: Buffer.alloc(300_000, 8),
      Metadata: stored.Metadata,
    }),
  );
  assert.equal((await fetch(`${server.url}/v1/cache/42`, { headers: auth(READ_TOKEN) })).status, 404);
  const quarantined = await client.send(
    new ListObjectsV2Command({ Bucket: 'kmx-cache', Prefix: 'nx/quarantine/main/42.' }),
  );
  assert.equal(quarantined.KeyCount, 1);
  assert.equal(
    (await fetch(`${server.url}/v1/cache/42`, { method: 'PUT', headers: auth(WRITE_TOKEN), body })).status,
    200,
    'the key is free again',
  );
});

test('an unreachable bucket stops the server at start with the reason', async () => {
  await assert.rejects(
    startCacheServer('s3://kmx-cache/nx', [], {
      KMATRIX_S3_ENDPOINT: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'y',
      AWS_MAX_ATTEMPTS: '1',
    }),
    /exited 1[\s\S]*cannot open the cache store s3:\/\/kmx-cache\/nx/,
  );
});
