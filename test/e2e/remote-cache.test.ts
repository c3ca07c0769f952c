/**
 * Runner A builds and pushes to the cache server; a fresh clone on runner B (its own Nx cache)
 * builds nothing and gets byte-identical modules; a corrupted object is refused, rebuilt and
 * replaced. All through the stock nx client and NX_SELF_HOSTED_REMOTE_CACHE_*.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheHits, cloneWorkspace, createWorkspace, expectOk, preparePipeline, type Workspace } from '../support/workspace.ts';
import { READ_TOKEN, WRITE_TOKEN, nxCacheEnv, startCacheServer } from '../support/cache-server.ts';

async function modules(ws: Workspace): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const dist = join(ws.dir, 'dist');
  for (const f of (await readdir(dist, { recursive: true })).filter((p) => p.endsWith('.ko')).sort()) {
    out.set(f, createHash('sha256').update(await readFile(join(dist, f))).digest('hex'));
  }
  return out;
}

test('a fresh clone on another runner builds zero drivers the trusted runner already built', { timeout: 20 * 60_000 }, async (t) => {
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-remote-'));
  t.after(() => rm(store, { recursive: true, force: true }));
  const server = await startCacheServer(store);
  t.after(() => server.stop());

  const a = await createWorkspace('kmatrix-runner-a-');
  t.after(() => a.remove());
  await preparePipeline(a);
  const built = expectOk(await a.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(server.url, WRITE_TOKEN)), 'runner A');
  const total = cacheHits(built.all)!.total;
  assert.ok(total >= 2);
  assert.deepEqual(cacheHits(built.all), { hits: 0, total });
  const stored = (await readdir(join(store, 'objects/main'))).filter((f) => !f.endsWith('.json'));
  assert.equal(stored.length, total, 'runner A pushed every task');

  const b = await cloneWorkspace(a, 'kmatrix-runner-b-');
  t.after(() => b.remove());
  const restored = expectOk(await b.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(server.url, READ_TOKEN)), 'runner B');
  assert.deepEqual(cacheHits(restored.all), { hits: total, total }, 'runner B built nothing');
  assert.match(restored.all, /\[remote cache\]/);
  assert.deepEqual(await modules(b), await modules(a), 'byte-identical .ko files');

  // Someone (or a disk) alters one stored object: the next runner is refused it, rebuilds that one
  // task, and its upload replaces the object.
  const victim = stored[0]!;
  await chmod(join(store, 'objects/main', victim), 0o644);
  await writeFile(join(store, 'objects/main', victim), 'not what was uploaded');
  const c = await cloneWorkspace(a, 'kmatrix-runner-c-');
  t.after(() => c.remove());
  const healed = expectOk(await c.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(server.url, WRITE_TOKEN)), 'runner C');
  assert.deepEqual(cacheHits(healed.all), { hits: total - 1, total });
  assert.match(server.output(), new RegExp(`quarantined main/${victim}`));
  const meta = JSON.parse(await readFile(join(store, 'objects/main', `${victim}.json`), 'utf8'));
  const body = await readFile(join(store, 'objects/main', victim));
  assert.equal(createHash('sha256').update(body).digest('hex'), meta.sha256, 'the object was replaced by the rebuild');
  assert.match(meta.target ?? '', /^kmx-echo--debian-bookworm--/, 'the server knows which target an entry is for');
  assert.deepEqual(await modules(c), await modules(a));
});
