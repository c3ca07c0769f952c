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
import {
  cacheHits,
  cloneWorkspace,
  createWorkspace,
  expectOk,
  preparePipeline,
  type Workspace,
} from '../support/workspace.ts';
import { READ_TOKEN, WRITE_TOKEN, nxCacheEnv, startCacheServer } from '../support/cache-server.ts';
import { startServer } from '../support/http.ts';

async function modules(ws: Workspace): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const dist = join(ws.dir, 'dist');
  for (const f of (await readdir(dist, { recursive: true })).filter((p) => p.endsWith('.ko')).sort()) {
    out.set(
      f,
      createHash('sha256')
        .update(await readFile(join(dist, f)))
        .digest('hex'),
    );
  }
  return out;
}

test('a fresh clone on another runner builds zero drivers the trusted runner already built', {
  timeout: 20 * 60_000,
}, async (t) => {
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-remote-'));
  t.after(() => rm(store, { recursive: true, force: true }));
  const server = await startCacheServer(store);
  t.after(() => server.stop());

  const a = await createWorkspace('kmatrix-runner-a-');
  t.after(() => a.remove());
  await preparePipeline(a);
  const built = expectOk(
    await a.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(server.url, WRITE_TOKEN)),
    'runner A',
  );
  const total = cacheHits(built.all)!.total;
  assert.ok(total >= 2);
  assert.deepEqual(cacheHits(built.all), { hits: 0, total });
  const stored = (await readdir(join(store, 'objects/main'))).filter((f) => !f.endsWith('.json'));
  assert.equal(stored.length, total, 'runner A pushed every task');

  const b = await cloneWorkspace(a, 'kmatrix-runner-b-');
  t.after(() => b.remove());
  const restored = expectOk(
    await b.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(server.url, READ_TOKEN)),
    'runner B',
  );
  assert.deepEqual(cacheHits(restored.all), { hits: total, total }, 'runner B built nothing');
  assert.match(restored.all, /\[remote cache\]/);
  assert.deepEqual(await modules(b), await modules(a), 'byte-identical .ko files');

  // Inspecting the cache: what is there, what went into an entry, why a changed target will miss.
  const remote = nxCacheEnv(server.url, READ_TOKEN);
  const ls = expectOk(await b.kmatrix(['cache', 'ls', '--remote'], remote), 'cache ls --remote');
  assert.match(ls.stdout, new RegExp(`^${total} entries$`, 'm'));
  const name = JSON.parse(
    expectOk(await b.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  )[0] as string;
  assert.match(ls.stdout, new RegExp(`^${name.replace(/[.+]/g, '\\$&')} .* write \\(main\\)`, 'm'));
  const show = expectOk(await b.kmatrix(['cache', 'show', name, '--remote'], remote), 'cache show --remote');
  const [driver, distro, release, arch] = name.split('--') as [string, string, string, string];
  const koSha = (await modules(a)).get(join(`targets/${driver}/${distro}/${release}/${arch}`, 'kmx_echo.ko'));
  assert.match(show.stdout, new RegExp(`^module     kmx_echo\\.ko  sha256 ${koSha}`, 'm'));
  assert.match(show.stdout, /^header {5}linux-headers-\S+ \S+ {2}sha256 [0-9a-f]{64}$/m);
  // An engineer rebuilds one target and compares it with what CI stored on the server.
  const reproduced = expectOk(
    await b.kmatrix(['reproduce', name, '--verify', '--remote'], remote),
    'reproduce --verify --remote',
  );
  assert.match(reproduced.stdout, /^identical to the cache server's entry \d+$/m);
  const local = expectOk(await a.kmatrix(['cache', 'ls']), 'cache ls (local)');
  assert.match(local.stdout, new RegExp(`^${total} entries$`, 'm'));
  const targetFile = `targets/${driver}/${distro}/${release}/${arch}/target.json`;
  const edited = JSON.parse(await b.read(targetFile));
  edited.headers[0].sha256 = 'e'.repeat(64);
  await b.write(targetFile, JSON.stringify(edited, null, 2));
  await b.write(
    'drivers/kmx-echo/kmx_echo_main.c',
    `${await b.read('drivers/kmx-echo/kmx_echo_main.c')}\n/* changed */\n`,
  );
  const explain = await b.kmatrix(['cache', 'explain', name, '--remote'], remote);
  assert.equal(explain.exitCode, 1, explain.all);
  assert.match(
    explain.stdout,
    new RegExp(
      `headers: ${edited.headers[0].name.replace(/[.+]/g, '\\$&')} \\S+: sha256 [0-9a-f]{12}… → eeeeeeeeeeee…`,
    ),
  );
  assert.match(explain.stdout, /source: kmx_echo_main\.c changed/);
  assert.doesNotMatch(explain.stdout, /toolchain:|flags:/);

  // Someone (or a disk) alters one stored object: the next runner is refused it, rebuilds that one
  // task, and its upload replaces the object.
  const victim = stored[0]!;
  await chmod(join(store, 'objects/main', victim), 0o644);
  await writeFile(join(store, 'objects/main', victim), 'not what was uploaded');
  const c = await cloneWorkspace(a, 'kmatrix-runner-c-');
  t.after(() => c.remove());
  const healed = expectOk(
    await c.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(server.url, WRITE_TOKEN)),
    'runner C',
  );
  assert.deepEqual(cacheHits(healed.all), { hits: total - 1, total });
  assert.match(server.output(), new RegExp(`quarantined main/${victim}`));
  const meta = JSON.parse(await readFile(join(store, 'objects/main', `${victim}.json`), 'utf8'));
  const body = await readFile(join(store, 'objects/main', victim));
  assert.equal(createHash('sha256').update(body).digest('hex'), meta.sha256, 'the object was replaced by the rebuild');
  assert.match(meta.target ?? '', /^kmx-echo--debian-bookworm--/, 'the server knows which target an entry is for');
  assert.deepEqual(await modules(c), await modules(a));

  // The server goes down: Nx alone would abort the run before any task; ours goes on with the
  // local cache and says why.
  await server.stop();
  const offline = expectOk(
    await a.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(server.url, WRITE_TOKEN)),
    'runner A, cache server down',
  );
  assert.match(
    offline.all,
    /remote cache http:\/\/127\.0\.0\.1:\d+ is not usable \(ECONNREFUSED\); running with the local cache only/,
  );
  assert.deepEqual(cacheHits(offline.all), { hits: total, total });

  // A server that is there but failing (every request 503): the same, with the status as the reason.
  const failing = await startServer((_req, res) => res.writeHead(503).end('down for maintenance'));
  t.after(() => failing.close());
  const degraded = expectOk(
    await a.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(failing.url, WRITE_TOKEN)),
    'runner A, cache server answering 503',
  );
  assert.match(
    degraded.all,
    /remote cache http:\/\/127\.0\.0\.1:\d+ is not usable \(it answered HTTP 503\); running with the local cache only/,
  );
  assert.deepEqual(cacheHits(degraded.all), { hits: total, total });
});
