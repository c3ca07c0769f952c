/**
 * Pull requests share a cache server with main but cannot hurt it: each pull request writes only
 * its own namespace (a token minted for it), reads main's, never another pull request's, and its
 * uploads evict only its own objects. And the server can speak TLS itself. The real
 * `kmatrix serve-cache` and `kmatrix cache token` processes, on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startCacheServer, WRITE_TOKEN } from '../support/cache-server.ts';
import { CacheServer } from '../../tools/kmatrix/cache/server.ts';
import { DirStore } from '../../tools/kmatrix/cache/dir-store.ts';
import { loadTokens } from '../../tools/kmatrix/cache/tokens.ts';
import { repoRoot } from '../support/workspace.ts';

const KEY = 'namespace-key-0123456789abcdef0123456789';

async function kmatrix(args: string[], env: NodeJS.ProcessEnv = {}) {
  return execa(process.execPath, [join(repoRoot, 'tools/kmatrix/cli.ts'), ...args], {
    env: { ...process.env, ...env },
    reject: false,
    all: true,
  });
}

async function tokenFor(ns: string): Promise<string> {
  const r = await kmatrix(['cache', 'token', ns], { KMATRIX_CACHE_NAMESPACE_KEY: KEY });
  assert.equal(r.exitCode, 0, r.all);
  return r.stdout.trim();
}

async function serverWith(t: { after: (fn: () => Promise<void>) => void }, args: string[]) {
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-sec-ns-'));
  const server = await startCacheServer(store, args, { KMATRIX_CACHE_NAMESPACE_KEY: KEY });
  t.after(async () => {
    await server.stop();
    await rm(store, { recursive: true, force: true });
  });
  const put = async (token: string, hash: string, body: Buffer = randomBytes(2 ** 20)) =>
    (
      await fetch(`${server.url}/v1/cache/${hash}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-length': String(body.length) },
        body,
      })
    ).status;
  const status = async (token: string, hash: string) =>
    (await fetch(`${server.url}/v1/cache/${hash}`, { headers: { authorization: `Bearer ${token}` } })).status;
  return { server, put, status };
}

test("a pull request's uploads evict only its own objects, never main's", async (t) => {
  const { put, status } = await serverWith(t, ['--max-bytes', '3M', '--namespace-max-bytes', '2M']);
  const pr = await tokenFor('pr-1');
  assert.equal(await put(WRITE_TOKEN, '1'), 200);
  assert.equal(await put(WRITE_TOKEN, '2'), 200);
  for (const hash of ['11', '12', '13', '14']) assert.equal(await put(pr, hash), 200);

  assert.equal(await status(WRITE_TOKEN, '1'), 200, "main's objects stay");
  assert.equal(await status(WRITE_TOKEN, '2'), 200);
  assert.equal(await status(pr, '11'), 404, "the pull request's oldest objects went, within its 2M budget");
  assert.equal(await status(pr, '14'), 200);
  assert.equal(await status(pr, '1'), 200, "and it reads main's");
  // An upload its budget could not keep is refused, not stored and evicted at once.
  assert.equal(await put(pr, '15', randomBytes(1_950_000)), 413);
});

test("a closed pull request's objects expire; main's stay", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-sec-ns-ttl-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const server = new CacheServer({
    store: new DirStore(dir),
    tokens: await loadTokens({ KMATRIX_CACHE_WRITE_TOKEN: WRITE_TOKEN, KMATRIX_CACHE_NAMESPACE_KEY: KEY }),
    maxBytes: 0,
    namespaceMaxBytes: 0,
    namespaceTtlMs: 1_000,
    maxBody: 2 ** 20,
    log: () => {},
  });
  await server.open();
  const url = await server.listen(0, '127.0.0.1');
  t.after(() => server.close());
  const pr = await tokenFor('pr-7');
  const put = async (token: string, hash: string) =>
    (
      await fetch(`${url}/v1/cache/${hash}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}` },
        body: 'x',
      })
    ).status;
  const status = async (token: string, hash: string) =>
    (await fetch(`${url}/v1/cache/${hash}`, { headers: { authorization: `Bearer ${token}` } })).status;
  assert.equal(await put(WRITE_TOKEN, '31'), 200);
  assert.equal(await put(pr, '32'), 200);
  await new Promise((r) => setTimeout(r, 1_300));
  assert.equal(await put(WRITE_TOKEN, '33'), 200); // a PUT runs the sweep
  assert.equal(await status(pr, '32'), 404, "the pull request's object expired");
  assert.equal(await status(WRITE_TOKEN, '31'), 200, "main's did not");
});

test("each pull request has its own namespace: it never reads another's, and a token names only its own", async (t) => {
  const { put, status } = await serverWith(t, []);
  const [one, two] = [await tokenFor('pr-1'), await tokenFor('pr-2')];
  assert.equal(await put(one, '21', Buffer.from('poisoned by pr-1')), 200);
  assert.equal(await status(two, '21'), 404, "pr-2 does not read pr-1's object");
  assert.equal(await status(WRITE_TOKEN, '21'), 404, 'main does not read it');
  assert.equal(await put(two, '21', Buffer.from('pr-2 builds its own')), 200, 'pr-2 writes the same key for itself');
  assert.equal(await status(one, '21'), 200);

  // A token edited to name another namespace, or main, is nobody's.
  const mac = one.split('.')[2];
  for (const forged of [`kmx-ns1.pr-2.${mac}`, `kmx-ns1.main.${mac}`, `kmx-ns1.pr-1.${'0'.repeat(64)}`])
    assert.equal(await put(forged, '22', Buffer.from('x')), 401, forged);
  // And nobody mints a token for main.
  const r = await kmatrix(['cache', 'token', 'main'], { KMATRIX_CACHE_NAMESPACE_KEY: KEY });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.all, /namespace "main" is used by configured tokens/);
});

test('with --tls-cert and --tls-key the server speaks HTTPS; a key that is not one is refused at start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-sec-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-days',
    '1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  const { server } = await serverWith(t, ['--tls-cert', cert, '--tls-key', key]);
  assert.match(server.url, /^https:\/\//);
  const ca = await readFile(cert);
  const answer = await new Promise<number>((resolve, reject) =>
    get(`${server.url}/healthz`, { ca }, (res) => resolve(res.statusCode ?? 0)).on('error', reject),
  );
  assert.equal(answer, 200);

  // A connection that never starts its handshake is cut at the headers' deadline, and shutdown
  // does not wait for it.
  const inProcess = new CacheServer({
    store: new DirStore(join(dir, 'store')),
    tokens: await loadTokens({ KMATRIX_CACHE_WRITE_TOKEN: WRITE_TOKEN }),
    maxBytes: 0,
    namespaceMaxBytes: 0,
    maxBody: 2 ** 20,
    log: () => {},
    timeouts: { headers: 500, shutdown: 500 },
    tls: { cert: ca, key: await readFile(key) },
  });
  await inProcess.open();
  const { port } = new URL(await inProcess.listen(0, '127.0.0.1'));
  const silent = connect(Number(port), '127.0.0.1');
  silent.on('error', () => {});
  const cut = await new Promise<boolean>((resolve) => {
    silent.on('close', () => resolve(true));
    setTimeout(() => resolve(false), 5_000);
  });
  assert.ok(cut, 'a silent TLS connection is closed at the deadline');
  const lingering = connect(Number(port), '127.0.0.1');
  lingering.on('error', () => {});
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  await inProcess.close();
  assert.ok(Date.now() - started < 3_000, `close took ${Date.now() - started} ms`);

  const bad = await kmatrix(['serve-cache', '--store', dir, '--port', '0', '--tls-cert', cert, '--tls-key', cert], {
    KMATRIX_CACHE_WRITE_TOKEN: WRITE_TOKEN,
  });
  assert.equal(bad.exitCode, 2, 'a usage error');
  assert.match(bad.all, /--tls-cert\/--tls-key: not a usable certificate and key/);
});
