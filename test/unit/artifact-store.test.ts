/** The directory artifact store: immutable artifacts, a compare-and-swap index, keys that stay inside. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirArtifactStore } from '../../tools/kmatrix/publish/artifact-store.ts';
import { openArtifactStore } from '../../tools/kmatrix/publish/open-artifact-store.ts';

async function store(t: { after(fn: () => Promise<void>): void }): Promise<{ dir: string; s: DirArtifactStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-artifacts-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { dir, s: new DirArtifactStore(dir) };
}

test('an artifact is written once: the same bytes again are fine, other bytes are refused', async (t) => {
  const { dir, s } = await store(t);
  assert.equal(await s.putOnce('modules/a/kmx_echo.ko', Buffer.from('one')), 'stored');
  assert.equal(await s.putOnce('modules/a/kmx_echo.ko', Buffer.from('one')), 'same');
  assert.equal(await s.putOnce('modules/a/kmx_echo.ko', Buffer.from('two')), 'different');
  assert.equal(await readFile(join(dir, 'modules/a/kmx_echo.ko'), 'utf8'), 'one');
  // Racing writers of different bytes: exactly one wins, no temp file is left.
  const results = await Promise.all(['x', 'y', 'z', 'w'].map((b) => s.putOnce('modules/b/m.ko', Buffer.from(b))));
  assert.equal(results.filter((r) => r === 'stored').length, 1, results.join());
  assert.equal(results.filter((r) => r === 'different').length, 3);
  assert.deepEqual(await readdir(join(dir, 'modules/b')), ['m.ko']);
});

test('the index is replaced only from the version it was read at', async (t) => {
  const { s } = await store(t);
  assert.equal(await s.replace('index.json', Buffer.from('v1'), undefined), true, 'created');
  assert.equal(await s.replace('index.json', Buffer.from('v1b'), undefined), false, 'it exists now');
  const v1 = (await s.getVersioned('index.json'))!;
  assert.equal(await s.replace('index.json', Buffer.from('v2'), v1.version), true);
  assert.equal(
    await s.replace('index.json', Buffer.from('v2b'), v1.version),
    false,
    'stale: someone wrote v2 meanwhile',
  );
  const v2 = (await s.getVersioned('index.json'))!;
  const racers = await Promise.all(['a', 'b', 'c'].map((b) => s.replace('index.json', Buffer.from(b), v2.version)));
  assert.equal(racers.filter(Boolean).length, 1, 'one of three writers from the same version wins');
});

test('keys never leave the store, and unknown stores are refused', async (t) => {
  const { s } = await store(t);
  await assert.rejects(s.putOnce('../escape', Buffer.from('x')), /invalid artifact key/);
  await assert.rejects(s.get('modules/../../etc/passwd'), /invalid artifact key/);
  await assert.rejects(openArtifactStore('ftp://host/x'), /unsupported artifact store/);
  await assert.rejects(openArtifactStore('s3://Bad_Bucket/x'), /not an S3 location/);
});
