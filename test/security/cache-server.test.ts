/**
 * The cache server under hostile requests: a malformed request line never takes it down, a gzip
 * bomb costs a bounded amount of memory, and a stalled upload neither holds its connection and
 * temp file forever nor holds up shutdown. Real servers on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CacheServer } from '../../tools/kmatrix/cache/server.ts';
import { DirStore } from '../../tools/kmatrix/cache/dir-store.ts';
import { loadTokens } from '../../tools/kmatrix/cache/tokens.ts';
import { READ_TOKEN, startCacheServer, WRITE_TOKEN } from '../support/cache-server.ts';
import { repoRoot } from '../support/workspace.ts';
import { execa } from 'execa';

/** Sends raw bytes and returns what the server answered before it closed (or after `ms`). */
function raw(url: string, request: string, ms = 5_000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(Number(port), hostname, () => socket.write(request));
    socket.on('data', (b) => (answer += b.toString()));
    const done = () => resolve(answer);
    socket.on('close', done);
    socket.on('error', done);
    setTimeout(() => socket.destroy(), ms);
  });
}

/** The real `kmatrix serve-cache` process on a fresh store, stopped and removed after the test. */
async function cacheServerProcess(t: { after: (fn: () => Promise<void>) => void }) {
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-sec-cache-'));
  const server = await startCacheServer(store);
  t.after(async () => {
    await server.stop();
    await rm(store, { recursive: true, force: true });
  });
  return server;
}

const healthy = async (url: string) => (await fetch(`${url}/healthz`)).status === 200;

test('request lines that are not URLs get an answer, and the server keeps serving', async (t) => {
  const server = await cacheServerProcess(t);
  for (const target of ['//', 'http://%zz/', '//v1/cache/1', '/v1/cache/%zz']) {
    const answer = await raw(
      server.url,
      `GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${READ_TOKEN}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 [45]\d\d /, `${target}: ${answer.slice(0, 80)}`);
  }
  assert.equal(server.child.exitCode, null, server.output());
  assert.ok(await healthy(server.url));
});

/** Peak resident memory of a process, in MiB (Linux). */
async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/^VmHWM:\s+(\d+) kB/m)![1]) / 1024;
}

test('a gzip bomb uploaded as a cache entry is stored without inflating it whole', async (t) => {
  const server = await cacheServerProcess(t);
  // 512 MiB of zeros, gzipped to well under a MiB.
  const zeros = Buffer.alloc(2 ** 20);
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < 512; i++) yield zeros;
      })(),
    ),
    createGzip({ level: 9 }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) parts.push(chunk);
    },
  );
  const bomb = Buffer.concat(parts);
  assert.ok(bomb.length < 2 ** 20, `the bomb is small (${bomb.length} bytes)`);
  const before = await peakRssMiB(server.child.pid!);
  const put = await fetch(`${server.url}/v1/cache/42`, {
    method: 'PUT',
    body: bomb,
    headers: { authorization: `Bearer ${WRITE_TOKEN}` },
  });
  assert.equal(put.status, 200);
  const after = await peakRssMiB(server.child.pid!);
  // Inflating it whole took the peak past 512 MiB; a bounded read adds a few tens of MiB at most.
  assert.ok(
    after - before < 128,
    `peak RSS grew by ${(after - before).toFixed(0)} MiB (from ${before.toFixed(0)} MiB)`,
  );
  const get = await fetch(`${server.url}/v1/cache/42`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  assert.equal(get.status, 200);
  assert.equal(Buffer.from(await get.arrayBuffer()).equals(bomb), true);
  assert.ok(await healthy(server.url));
});

/** A PUT that sends its headers and a little of its body, then nothing. */
function stalledUpload(url: string, declared = 1_000_000): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `PUT /v1/cache/7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITE_TOKEN}\r\nContent-Length: ${declared}\r\n\r\n0123456789`,
      );
      resolve(socket);
    });
    socket.on('error', () => {});
  });
}

async function inProcessServer(timeouts: ConstructorParameters<typeof CacheServer>[0]['timeouts']) {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-sec-cache-'));
  const store = new DirStore(dir);
  const server = new CacheServer({
    store,
    tokens: await loadTokens({ KMATRIX_CACHE_READ_TOKEN: READ_TOKEN, KMATRIX_CACHE_WRITE_TOKEN: WRITE_TOKEN }),
    maxBytes: 0,
    namespaceMaxBytes: 0,
    maxBody: 2 ** 30,
    log: () => {},
    timeouts,
  });
  await server.open();
  const url = await server.listen(0, '127.0.0.1');
  return { dir, server, url };
}

for (const [declared, held] of [
  [1_000_000, 'streamed to a temp file'],
  [100_000, 'held in memory'],
] as const) {
  test(`a stalled upload (${held}) is cut after the idle timeout and leaves nothing behind`, async (t) => {
    const { dir, server, url } = await inProcessServer({ idle: 500 });
    t.after(async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    });
    const tmpFiles = () => readdir(join(dir, 'tmp')).catch(() => [] as string[]);
    const socket = await stalledUpload(url, declared);
    await new Promise((r) => setTimeout(r, 150));
    // Over 256 KiB an upload goes to disk as it arrives; a small one is held until it is whole.
    assert.equal((await tmpFiles()).length, declared > 256 * 1024 ? 1 : 0, 'the upload is in flight');
    const closed = await new Promise<boolean>((resolve) => {
      socket.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 10_000);
    });
    assert.ok(closed, 'the server closed the stalled connection');
    // The upload's temp file goes with it.
    for (let i = 0; i < 50 && (await tmpFiles()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await tmpFiles(), []);
    assert.equal(
      (await fetch(`${url}/v1/cache/7`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })).status,
      404,
    );
  });
}

test('shutdown waits for a stalled upload only until its deadline', async (t) => {
  const { dir, server, url } = await inProcessServer({ idle: 60_000, shutdown: 500 });
  t.after(() => rm(dir, { recursive: true, force: true }));
  const socket = await stalledUpload(url);
  await new Promise((r) => setTimeout(r, 200)); // the upload is in flight
  const closed = await Promise.race([
    server.close().then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 10_000)),
  ]);
  assert.ok(closed, 'close() returned although the upload never finished');
  socket.destroy();
});

test('tokens from *_TOKEN_FILE are the tokens; an upload over --max-body is 413; an unreadable token file stops the start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-sec-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [readFile_, writeFile_] = [join(dir, 'read'), join(dir, 'write')];
  await writeFile(readFile_, 'file-read-token-0123456789\n');
  await writeFile(writeFile_, 'file-write-token-0123456789\n');
  const server = await startCacheServer(join(dir, 'store'), ['--max-body', '1K'], {
    KMATRIX_CACHE_READ_TOKEN: '',
    KMATRIX_CACHE_WRITE_TOKEN: '',
    KMATRIX_CACHE_READ_TOKEN_FILE: readFile_,
    KMATRIX_CACHE_WRITE_TOKEN_FILE: writeFile_,
  });
  t.after(async () => {
    await server.stop();
  });
  const put = async (token: string, hash: string, bytes: number) =>
    (
      await fetch(`${server.url}/v1/cache/${hash}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}` },
        body: Buffer.alloc(bytes, 1),
      })
    ).status;
  assert.equal(
    await put('file-write-token-0123456789', '1', 512),
    200,
    'the token from the file (its newline trimmed)',
  );
  assert.equal(await put('file-write-token-0123456789', '2', 2048), 413, 'over --max-body 1K');
  assert.equal(await put(WRITE_TOKEN, '3', 10), 401, 'the environment token is not set');
  assert.equal(await put('file-read-token-0123456789', '4', 10), 403, 'a read token may only read');

  const missing = await execa(
    process.execPath,
    [join(repoRoot, 'tools/kmatrix/cli.ts'), 'serve-cache', '--store', join(dir, 'store2'), '--port', '0'],
    { env: { ...process.env, KMATRIX_CACHE_READ_TOKEN_FILE: join(dir, 'nope') }, reject: false, all: true },
  );
  assert.equal(missing.exitCode, 1);
  assert.match(missing.all, /cannot read KMATRIX_CACHE_READ_TOKEN_FILE \(.*nope\): ENOENT/);
});
