/**
 * The cache server over real HTTP on 127.0.0.1: status codes the nx client relies on, tokens,
 * integrity, atomic first-writer-wins publishing, interrupted uploads, graceful shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { READ_TOKEN, WRITE_TOKEN, startCacheServer } from '../support/cache-server.ts';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const put = (url: string, hash: string, body: Buffer | string, token = WRITE_TOKEN) =>
  fetch(`${url}/v1/cache/${hash}`, { method: 'PUT', headers: auth(token), body });
const get = (url: string, hash: string, token = READ_TOKEN) =>
  fetch(`${url}/v1/cache/${hash}`, { headers: auth(token) });

async function tempStore(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-cache-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Sends headers and part of a body, then leaves the socket open for the caller. */
function partialPut(url: string, hash: string, declared: number, sent: Buffer) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.write(
    `PUT /v1/cache/${hash} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${WRITE_TOKEN}\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  socket.write(sent);
  let response = '';
  socket.on('data', (b) => (response += b.toString()));
  socket.on('error', () => {});
  return { socket, response: () => response };
}

test('a writer stores, a reader restores; tokens and hashes are checked', async (t) => {
  const server = await startCacheServer(await tempStore(t));
  t.after(() => server.stop());
  const body = Buffer.from('a cache entry\n'.repeat(1000));

  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.equal((await get(server.url, '123')).status, 404);
  const stored = await put(server.url, '123', body);
  assert.equal(stored.status, 200, 'exactly 200: the nx client treats 202 as an error');
  const restored = await get(server.url, '123');
  assert.equal(restored.status, 200);
  assert.deepEqual(Buffer.from(await restored.arrayBuffer()), body);
  assert.equal((await put(server.url, '123', 'other bytes')).status, 409, 'first writer wins');

  const readOnly = await put(server.url, '456', body, READ_TOKEN);
  assert.equal(readOnly.status, 403);
  const wrong = await get(server.url, '123', 'not-a-token');
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal((await fetch(`${server.url}/v1/cache/123`)).status, 401);
  for (const bad of ['..%2F..%2Fetc%2Fpasswd', 'abc', '12a', '%2E%2E%2Fx'])
    assert.equal((await get(server.url, bad)).status, 400, bad);
  // What fetch would normalise away, sent raw: the server answers 400, it never resolves a path.
  const { hostname, port } = new URL(server.url);
  const raw = await new Promise<string>((resolve) => {
    const socket = connect(Number(port), hostname, () =>
      socket.end(
        `GET /v1/cache/../../etc/passwd HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${READ_TOKEN}\r\nConnection: close\r\n\r\n`,
      ),
    );
    let text = '';
    socket.on('data', (b) => (text += b.toString()));
    socket.on('end', () => resolve(text));
  });
  assert.match(raw, /^HTTP\/1\.1 400/);
  assert.doesNotMatch(server.output(), new RegExp(`${READ_TOKEN}|${WRITE_TOKEN}`), 'tokens are never logged');
  const log = server.accessLog().filter((e) => e.path === '/v1/cache/123');
  assert.ok(log.some((e) => e.method === 'PUT' && e.status === 200 && e.client === 'write' && e.bytes === body.length));
});

test('a stored object that no longer matches its SHA256 is refused, quarantined, and can be written again', async (t) => {
  const dir = await tempStore(t);
  const server = await startCacheServer(dir);
  t.after(() => server.stop());
  await put(server.url, '777', 'original bytes');
  const file = join(dir, 'objects/main/777');
  await chmod(file, 0o644);
  await writeFile(file, 'tampered bytes');
  const refused = await get(server.url, '777');
  assert.equal(refused.status, 404, 'a miss, so the nx task rebuilds instead of restoring bad outputs');
  assert.match(server.output(), /quarantined main\/777/);
  assert.ok((await readdir(join(dir, 'quarantine/main'))).some((f) => f.startsWith('777.')));
  assert.equal((await put(server.url, '777', 'rebuilt bytes')).status, 200, 'the key is free again');
  assert.equal(await (await get(server.url, '777')).text(), 'rebuilt bytes');
});

/** The access log's lines for the successful GETs of one hash (whole lines only: a pipe delivers them in pieces). */
function servedGets(server: { output(): string }, hash: string): { verify: string; from: string }[] {
  return server
    .output()
    .split('\n')
    .slice(0, -1)
    .filter((l) => l.includes(`"method":"GET","path":"/v1/cache/${hash}","status":200`))
    .map((l) => JSON.parse(l));
}

/** The server's log comes through a pipe: wait for its lines. */
async function waitForGets(server: { output(): string }, hash: string, n: number): Promise<void> {
  for (let i = 0; i < 500 && servedGets(server, hash).length < n; i++) await new Promise((r) => setTimeout(r, 20));
}

test('a body hashed once is served without hashing again until its file changes; a same-size tamper is still refused', async (t) => {
  const dir = await tempStore(t);
  const server = await startCacheServer(dir);
  t.after(() => server.stop());
  const body = Buffer.alloc(256 * 1024, 7);
  await put(server.url, '778', body);
  const verifies = () => servedGets(server, '778').map((e) => e.verify);
  for (let i = 0; i < 3; i++) assert.deepEqual(Buffer.from(await (await get(server.url, '778')).arrayBuffer()), body);
  await waitForGets(server, '778', 3);
  assert.deepEqual(verifies(), ['hashed', 'known', 'known'], 'hashed on the first GET only');
  assert.deepEqual(
    servedGets(server, '778').map((e) => e.from),
    ['store', 'memory', 'memory'],
    'read once, then served from the verified copy in memory',
  );

  // The same number of bytes, written in place behind the server's back: its mtime changed.
  const file = join(dir, 'objects/main/778');
  await chmod(file, 0o644);
  await writeFile(file, Buffer.alloc(256 * 1024, 8));
  assert.equal((await get(server.url, '778')).status, 404);
  assert.match(server.output(), /quarantined main\/778/);
  assert.deepEqual(verifies(), ['hashed', 'known', 'known']);
});

test('a burst of GETs of an entry nobody has read yet hashes it once; an entry too big to keep streams from the store', async (t) => {
  const server = await startCacheServer(await tempStore(t));
  t.after(() => server.stop());
  const small = Buffer.alloc(512 * 1024, 3);
  const big = Buffer.alloc(2 * 2 ** 20, 4);
  await put(server.url, '801', small);
  await put(server.url, '802', big);
  for (const [hash, body] of [
    ['801', small],
    ['802', big],
  ] as const) {
    const got = await Promise.all(
      Array.from({ length: 20 }, async () => Buffer.from(await (await get(server.url, hash)).arrayBuffer())),
    );
    assert.ok(
      got.every((b) => b.equals(body)),
      `all 20 GETs of ${hash} got its bytes`,
    );
    await waitForGets(server, hash, 20);
    const log = servedGets(server, hash);
    assert.equal(log.filter((e) => e.verify === 'hashed').length, 1, `${hash} hashed once: ${JSON.stringify(log)}`);
    assert.ok(log.every((e) => ['hashed', 'joined', 'known'].includes(e.verify)));
  }
  assert.ok(
    servedGets(server, '802').every((e) => e.from === 'store'),
    'a body over 1 MiB is never held in memory',
  );
});

test('concurrent PUTs of one key leave one whole object', async (t) => {
  const server = await startCacheServer(await tempStore(t));
  t.after(() => server.stop());
  const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024, i + 1));
  const statuses = (await Promise.all(bodies.map((b) => put(server.url, '999', b)))).map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
  const got = Buffer.from(await (await get(server.url, '999')).arrayBuffer());
  assert.ok(
    bodies.some((b) => b.equals(got)),
    'the object is exactly one of the uploads',
  );
});

test('an upload cut short, or killed with the server, stores nothing', async (t) => {
  const dir = await tempStore(t);
  let server = await startCacheServer(dir);
  t.after(() => server.stop());
  // The client goes away after half the bytes.
  const half = partialPut(server.url, '1001', 1000, Buffer.alloc(500, 1));
  await new Promise((r) => setTimeout(r, 200));
  half.socket.destroy();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await get(server.url, '1001')).status, 404);
  assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'nothing left of it');
  // The same for an upload big enough to stream to disk as it arrives.
  const streamed = partialPut(server.url, '1003', 1_000_000, Buffer.alloc(400_000, 1));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await readdir(join(dir, 'tmp'))).length, 1, 'the upload is on its way to disk');
  streamed.socket.destroy();
  for (let i = 0; i < 50 && (await readdir(join(dir, 'tmp'))).length > 0; i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'its temp file is gone');
  assert.equal((await get(server.url, '1003')).status, 404);

  // The server is killed mid-upload, then restarted on the same store.
  const upload = partialPut(server.url, '1002', 10_000_000, Buffer.alloc(1_000_000, 2));
  await new Promise((r) => setTimeout(r, 300));
  await server.stop('SIGKILL');
  upload.socket.destroy();
  server = await startCacheServer(dir);
  assert.equal((await get(server.url, '1002')).status, 404);
  assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'no upload remnants');
  assert.deepEqual(
    (await readdir(join(dir, 'objects/main')).catch(() => [])).filter((f) => f.startsWith('1002')),
    [],
  );
});

test('SIGTERM lets an upload in flight finish, then the server exits cleanly', async (t) => {
  const dir = await tempStore(t);
  const server = await startCacheServer(dir);
  const first = Buffer.alloc(100_000, 3);
  const rest = Buffer.alloc(100_000, 4);
  const upload = partialPut(server.url, '2002', first.length + rest.length, first);
  await new Promise((r) => setTimeout(r, 200));
  const stopped = server.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  upload.socket.write(rest);
  assert.equal(await stopped, 0);
  assert.match(upload.response(), /^HTTP\/1\.1 200/);
  const meta = JSON.parse(await readFile(join(dir, 'objects/main/2002.json'), 'utf8'));
  assert.equal(
    meta.sha256,
    createHash('sha256')
      .update(Buffer.concat([first, rest]))
      .digest('hex'),
  );
});

test('namespaces: a pull request writes its own, reads main; main never reads it', async (t) => {
  const dir = await tempStore(t);
  const prToken = 'pr-token-123';
  const tokensFile = join(dir, '..', `${dir.split('/').pop()}-tokens.json`);
  await writeFile(
    tokensFile,
    JSON.stringify({
      tokens: [
        {
          name: 'pull-requests',
          sha256: createHash('sha256').update(prToken).digest('hex'),
          access: 'write',
          namespace: 'pr',
          readFrom: ['main'],
        },
      ],
    }),
  );
  t.after(() => rm(tokensFile, { force: true }));
  const server = await startCacheServer(dir, ['--tokens', tokensFile]);
  t.after(() => server.stop());
  await put(server.url, '10', 'built on main');
  assert.equal(await (await get(server.url, '10', prToken)).text(), 'built on main', 'a PR reads main');
  assert.equal((await put(server.url, '20', 'built on a PR', prToken)).status, 200);
  assert.equal((await get(server.url, '20', READ_TOKEN)).status, 404, 'main never reads what a PR wrote');
  assert.equal((await get(server.url, '20', WRITE_TOKEN)).status, 404);
  assert.equal(await (await get(server.url, '20', prToken)).text(), 'built on a PR');
});

test('serve-cache refuses to start without tokens, and says how to give them', async (t) => {
  const dir = await tempStore(t);
  await assert.rejects(
    startCacheServer(dir, [], { KMATRIX_CACHE_READ_TOKEN: '', KMATRIX_CACHE_WRITE_TOKEN: '' }),
    /no cache tokens configured[\s\S]*KMATRIX_CACHE_READ_TOKEN/,
  );
});

test('above --max-bytes the least recently used objects are evicted', async (t) => {
  const server = await startCacheServer(await tempStore(t), ['--max-bytes', '250K']);
  t.after(() => server.stop());
  for (const hash of ['1', '2', '3']) {
    assert.equal((await put(server.url, hash, Buffer.alloc(100 * 1024, Number(hash)))).status, 200);
    await new Promise((r) => setTimeout(r, 20)); // distinct times
  }
  assert.equal((await get(server.url, '1')).status, 404, 'the oldest went');
  assert.equal((await get(server.url, '2')).status, 200);
  assert.equal((await get(server.url, '3')).status, 200);
  assert.match(server.output(), /evicted main\/1 \(102400 bytes/);
});

test('an object evicted while a reader is sending it: the reader still gets the whole body, the next reader a miss', async (t) => {
  const root = await tempStore(t);
  const server = await startCacheServer(root, ['--max-bytes', '100M']);
  t.after(() => server.stop());
  // Bigger than loopback's socket buffers, so most of it is still on disk when the eviction comes.
  const body = Buffer.alloc(64 * 1024 * 1024);
  for (let i = 0; i < body.length; i += 4096) body.writeUInt32LE(i, i);
  assert.equal((await put(server.url, '1001', body)).status, 200);

  // A slow reader: one chunk, then it stops reading while the server is mid-body.
  const reading = await get(server.url, '1001');
  assert.equal(reading.status, 200);
  const reader = reading.body!.getReader();
  const chunks: Uint8Array[] = [(await reader.read()).value!];

  // Another upload pushes the store over --max-bytes: the object being read is the least recently used.
  assert.equal((await put(server.url, '1002', Buffer.alloc(64 * 1024 * 1024, 9))).status, 200);
  // The log line and the PUT's answer travel apart: wait for the line a little.
  for (let i = 0; i < 50 && !/evicted main\/1001 /.test(server.output()); i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.match(server.output(), /evicted main\/1001 \(67108864 bytes/);
  assert.equal((await get(server.url, '1001')).status, 404, 'the next reader gets a miss');

  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  const received = Buffer.concat(chunks);
  assert.equal(received.length, body.length, 'the whole body');
  assert.ok(received.equals(body), 'every byte as uploaded');
  assert.deepEqual(await readdir(join(root, 'tmp')), [], 'the reader left nothing behind');
});
