/**
 * What the README promises of S3, on an S3 that honours conditional writes: Ceph's RADOS Gateway
 * on 127.0.0.1 (test/support/radosgw.ts; the s3rver of the other S3 tests ignores If-Match and
 * If-None-Match, so there our own pre-checks were all that was tested). Racing writers of one
 * artifact or one cache object: exactly one creates it. Racing publishers of the index, each
 * reading, merging and writing back with If-Match: no entry is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { S3ArtifactStore } from '../../tools/kmatrix/publish/s3-artifact-store.ts';
import { S3Store } from '../../tools/kmatrix/cache/s3-store.ts';
import type { ObjectMeta } from '../../tools/kmatrix/cache/blob-store.ts';
import { startRadosgw } from '../support/radosgw.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('on an S3 that honours conditional writes, racing writers create each object once and racing publishers lose no index entry', {
  timeout: 5 * 60_000,
}, async (t) => {
  const s3 = await startRadosgw(t, 'kmx');
  const artifacts = new S3ArtifactStore('s3://kmx/drivers', s3.env);

  // Eight publishers of one module key with different bytes: one stores, the others are told.
  const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`module build ${i}\n`));
  const results = await Promise.all(bodies.map((b) => artifacts.putOnce('modules/x/kmx_echo.ko', b)));
  assert.equal(results.filter((r) => r === 'stored').length, 1, results.join());
  assert.equal(results.filter((r) => r === 'different').length, 7, results.join());
  const kept = await artifacts.get('modules/x/kmx_echo.ko');
  assert.ok(kept?.equals(bodies[results.indexOf('stored')]!), 'the stored bytes are the winner’s');

  // The index's compare-and-swap: created once, replaced only from the version read.
  assert.equal(await artifacts.replace('cas.json', Buffer.from('v1'), undefined), true);
  assert.equal(await artifacts.replace('cas.json', Buffer.from('v1b'), undefined), false, 'it exists now');
  const v1 = (await artifacts.getVersioned('cas.json'))!;
  assert.equal(await artifacts.replace('cas.json', Buffer.from('v2'), v1.version), true, 'from the version read');
  assert.equal(await artifacts.replace('cas.json', Buffer.from('v3'), v1.version), false, 'stale');
  assert.equal((await artifacts.get('cas.json'))?.toString(), 'v2');

  // Twelve publishers add their entry to one index at once, as publish does (read, merge, write
  // back if unchanged, else again): every entry is there at the end.
  const publishers = Array.from({ length: 12 }, (_, i) => `target-${i}`);
  await Promise.all(
    publishers.map(async (name) => {
      for (let attempt = 1; attempt <= 40; attempt++) {
        const current = await artifacts.getVersioned('index.json');
        const index = current ? (JSON.parse(current.body.toString()) as Record<string, number>) : {};
        index[name] = attempt;
        if (await artifacts.replace('index.json', Buffer.from(JSON.stringify(index)), current?.version)) return;
      }
      assert.fail(`${name} never got its entry in`);
    }),
  );
  const index = JSON.parse((await artifacts.get('index.json'))!.toString()) as Record<string, number>;
  assert.deepEqual(Object.keys(index).sort(), [...publishers].sort(), 'no entry lost');

  // The cache server's objects: racing uploads of one task hash, one creates it.
  const cache = new S3Store('s3://kmx/nx-cache', s3.env);
  await cache.init();
  const uploads = Array.from({ length: 6 }, (_, i) => Buffer.from(`cache entry ${i}\n`.repeat(1000)));
  const created = await Promise.all(
    uploads.map(async (body) => {
      const file = await cache.tempPath();
      await writeFile(file, body);
      const now = new Date().toISOString();
      const meta: ObjectMeta = {
        namespace: 'main',
        hash: '4242',
        sha256: sha(body),
        size: body.length,
        createdAt: now,
        lastAccess: now,
        writer: 'test',
      };
      return cache.publish(file, meta);
    }),
  );
  assert.equal(created.filter((r) => r === 'created').length, 1, created.join());
  const stored = await cache.get('main', '4242');
  assert.equal(stored?.meta.sha256, sha(uploads[created.indexOf('created')]!));
  await stored?.release();
});
