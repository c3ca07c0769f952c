/**
 * How the cache server verifies what it serves, watched from its store: GETs arriving while an
 * entry is being hashed wait for that one hash (and share its outcome, a refusal included), and a
 * copy kept in memory is never served once its object is gone. A real server on 127.0.0.1 over a
 * real directory store, whose reads the test can hold back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { ObjectMeta, StoredObject } from '../../tools/kmatrix/cache/blob-store.ts';
import { DirStore } from '../../tools/kmatrix/cache/dir-store.ts';
import { CacheServer } from '../../tools/kmatrix/cache/server.ts';
import { loadTokens } from '../../tools/kmatrix/cache/tokens.ts';
import { READ_TOKEN, WRITE_TOKEN } from '../support/cache-server.ts';

/** A directory store that counts its lookups and body reads, and holds reads back until opened. */
class WatchedStore extends DirStore {
  lookups = 0;
  reads = 0;
  open: () => void = () => {};
  private gate: Promise<void> = Promise.resolve();

  holdReads(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  override async get(ns: string, hash: string, known?: ObjectMeta): Promise<StoredObject | undefined> {
    const found = await super.get(ns, hash, known);
    if (!found) return found;
    this.lookups++;
    return {
      ...found,
      read: () => {
        this.reads++;
        const out = new PassThrough();
        void this.gate.then(() => found.read().pipe(out));
        return out;
      },
    };
  }
}

async function serve(t: { after: (fn: () => Promise<void>) => void }, maxBytes = 0) {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-cache-verify-'));
  const store = new WatchedStore(dir);
  const log: Record<string, unknown>[] = [];
  const server = new CacheServer({
    store,
    tokens: await loadTokens({ KMATRIX_CACHE_READ_TOKEN: READ_TOKEN, KMATRIX_CACHE_WRITE_TOKEN: WRITE_TOKEN }),
    maxBytes,
    namespaceMaxBytes: 0,
    maxBody: 2 ** 30,
    log: (e) => log.push(e),
  });
  await server.open();
  const url = await server.listen(0, '127.0.0.1');
  t.after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const put = (hash: string, body: Buffer) =>
    fetch(`${url}/v1/cache/${hash}`, { method: 'PUT', headers: { authorization: `Bearer ${WRITE_TOKEN}` }, body });
  const get = async (hash: string) => {
    const res = await fetch(`${url}/v1/cache/${hash}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };
  const verifies = (hash: string) =>
    log.filter((e) => e.path === `/v1/cache/${hash}` && e.method === 'GET').map((e) => e.verify ?? e.status);
  return { dir, store, log, put, get, verifies };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), what);
}

test('GETs that arrive while an entry is being hashed wait for that hash: its body is read once', async (t) => {
  const { store, put, get, verifies } = await serve(t);
  const body = Buffer.alloc(300 * 1024, 5);
  assert.equal((await put('11', body)).status, 200);
  store.holdReads();
  const gets = Array.from({ length: 5 }, () => get('11'));
  await until('all five GETs reached the store', () => store.lookups === 5);
  store.open();
  for (const got of await Promise.all(gets)) {
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(body));
  }
  assert.equal(store.reads, 1, 'one read: hashed and kept, then sent from memory to all five');
  assert.deepEqual(verifies('11').sort(), ['hashed', 'joined', 'joined', 'joined', 'joined']);
});

test('when that hash finds the body damaged, every GET waiting for it gets a miss', async (t) => {
  const { dir, store, log, put, get, verifies } = await serve(t);
  assert.equal((await put('12', Buffer.alloc(300 * 1024, 6))).status, 200);
  store.holdReads();
  const gets = Array.from({ length: 3 }, () => get('12'));
  await until('all three GETs reached the store', () => store.lookups === 3);
  // Damaged in place while the hash waits (the open handles read the damaged bytes).
  const file = join(dir, 'objects/main/12');
  await chmod(file, 0o644);
  await writeFile(file, Buffer.alloc(300 * 1024, 7));
  store.open();
  assert.deepEqual(
    (await Promise.all(gets)).map((g) => g.status),
    [404, 404, 404],
  );
  assert.equal(store.reads, 1);
  assert.equal(log.filter((e) => String(e.message).startsWith('quarantined main/12')).length, 1, 'quarantined once');
  assert.equal((await readdir(join(dir, 'quarantine/main'))).filter((f) => !f.endsWith('.json')).length, 1);
  assert.deepEqual(verifies('12'), [404, 404, 404]);
});

test('a copy kept in memory is never served once its object is evicted', async (t) => {
  const KiB = 1024;
  const { put, get, verifies } = await serve(t, 250 * KiB);
  assert.equal((await put('21', Buffer.alloc(100 * KiB, 1))).status, 200);
  assert.equal((await get('21')).status, 200);
  assert.equal((await get('21')).status, 200);
  assert.deepEqual(verifies('21'), ['hashed', 'known'], 'kept after its first GET');
  // Two more objects take main past its 250 KiB budget: the least recently used, 21, goes.
  assert.equal((await put('22', Buffer.alloc(100 * KiB, 2))).status, 200);
  assert.equal((await put('23', Buffer.alloc(100 * KiB, 3))).status, 200);
  assert.equal((await get('21')).status, 404, 'its copy went with it');
  assert.deepEqual(verifies('21'), ['hashed', 'known', 404]);
  assert.equal((await get('23')).status, 200);
});
