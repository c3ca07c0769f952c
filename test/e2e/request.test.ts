/**
 * On demand: a node asks the request service for its kernel's driver. Published kernels are a
 * lookup; a kernel the nightly matrix trims (`latest`) is generated, built once for any number of
 * concurrent callers and published; a kernel the lists have never seen is crawled first; a kernel
 * the policy does not cover is a 404 that says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';
import { startRequestService } from '../support/request-service.ts';

const TOKEN = 'request-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface Entry {
  kernelrelease: string;
  kmatrix: { flavour: string; abi: string };
}
interface Answer {
  source: string;
  modules: { target: string; file: string; sha256: string; key: string; url: string; download: string }[];
}

test('the request service answers from the published index, builds a missing kernel once for concurrent callers, crawls an unseen one', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-request-');
  t.after(() => ws.remove());
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-request-store-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const store = join(scratch, 'store');
  await preparePipeline(ws);
  const list = JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json')) as { debian: Entry[] };
  const abis = list.debian
    .filter((e) => e.kmatrix.flavour === 'amd64' && e.kmatrix.abi.startsWith('6.1.0-'))
    .map((e) => e.kernelrelease);
  const [newest, older, unseen, cached] = [abis.at(-1)!, abis.at(-2)!, abis.at(-3)!, abis.at(-4)!];
  // The node's kernel is not in yesterday's crawl.
  await ws.write(
    'kernels/debian-bookworm-x86_64.json',
    JSON.stringify({ debian: list.debian.filter((e) => e.kernelrelease !== unseen) }, null, 2),
  );
  await ws.commitAll('a crawl without the kernel');
  expectOk(await ws.nx(['run-many', '-t', 'build-driver']), 'nx run-many');
  expectOk(await ws.kmatrix(['publish', '--store', store]), 'publish');
  // Some runner built this kernel's target once (here: this checkout), but it was never published.
  expectOk(await ws.kmatrix(['gen', '--only', `debian-bookworm/${cached}/x86_64`]), 'gen --only');
  expectOk(
    await ws.nx(['run-many', '-t', 'build-driver', `--projects=kmx-echo--debian-bookworm--${cached}--x86_64`]),
    'build it',
  );
  await rm(join(ws.dir, 'targets/kmx-echo/debian-bookworm', cached), { recursive: true });
  await rm(join(ws.dir, 'dist/targets/kmx-echo/debian-bookworm', cached), { recursive: true });

  const service = await startRequestService(ws, ['--port', '0', '--store', store], { KMATRIX_REQUEST_TOKEN: TOKEN });
  t.after(() => service.stop());
  const port = new URL(service.base).port;
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers: AUTH });
    const bytes = Buffer.from(await r.arrayBuffer());
    return {
      status: r.status,
      body: r.headers.get('content-type')?.includes('json')
        ? (JSON.parse(bytes.toString()) as Answer & { error?: string; remedy?: string })
        : undefined,
      bytes,
    };
  };

  // Published: a lookup.
  const published = await get(`/v1/modules/debian-bookworm/${newest}/x86_64`);
  assert.equal(published.status, 200);
  assert.equal(published.body!.source, 'published');
  assert.deepEqual(
    published.body!.modules.map((m) => m.target),
    [`kmx-echo--debian-bookworm--${newest}--x86_64`],
  );
  const file = await fetch(`http://127.0.0.1:${port}${published.body!.modules[0]!.download}`, { headers: AUTH });
  assert.equal(
    createHash('sha256')
      .update(Buffer.from(await file.arrayBuffer()))
      .digest('hex'),
    published.body!.modules[0]!.sha256,
  );

  // Trimmed by `latest: 1`, wanted by three nodes at once: one build, three identical answers.
  const three = await Promise.all([1, 2, 3].map(() => get(`/v1/modules/debian-bookworm/${older}/x86_64`)));
  for (const r of three) assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(three[0]!.body!.source, 'built');
  assert.deepEqual(three[1]!.body, three[0]!.body);
  assert.deepEqual(three[2]!.body, three[0]!.body);
  assert.equal(service.log().split(`debian-bookworm/${older}/x86_64: building`).length - 1, 1, service.log());
  assert.equal(
    service.log().split(`debian-bookworm/${older}/x86_64: joining the request in progress`).length - 1,
    2,
    service.log(),
  );
  const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8'));
  assert.equal(Object.keys(index.targets).length, 5, 'published: the four of the matrix and the one requested');
  const again = await get(`/v1/modules/debian-bookworm/${older}/x86_64`);
  assert.equal(again.body!.source, 'published');

  // Built before: restored from the cache, then published.
  const fromCache = await get(`/v1/modules/debian-bookworm/${cached}/x86_64`);
  assert.equal(fromCache.status, 200, JSON.stringify(fromCache.body));
  assert.equal(fromCache.body!.source, 'cache');

  // A kernel no list knows: crawled, generated, built.
  const fresh = await get(`/v1/modules/debian-bookworm/${unseen}/x86_64`);
  assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
  assert.equal(fresh.body!.source, 'built');
  assert.match(service.log(), new RegExp(`${unseen}/x86_64: not in the kernel lists; crawling debian bookworm x86_64`));
  const verify = await ws.kmatrix(['verify', fresh.body!.modules[0]!.url, '--store', store]);
  assert.equal(verify.exitCode, 0, verify.all);
  assert.match(verify.stdout, /✓ signature +none \(unsigned module\)/);
  // This store does not sign: a node that requires signatures refuses the module, and says why.
  const strict = await ws.kmatrix(['verify', fresh.body!.modules[0]!.url, '--store', store, '--require-signature']);
  assert.equal(strict.exitCode, 1, strict.all);
  assert.match(strict.stdout, /✗ signed by +nobody \(unsigned envelope\)/);
  assert.match(strict.stdout, /✗ signature +none \(unsigned module\)/);
  assert.match(strict.stdout, /NOT verified/);

  // Not covered by the policy (the rt flavour), and malformed: said so, nothing built.
  const rt = list.debian.find(
    (e) => e.kmatrix.flavour === 'rt-amd64' && e.kmatrix.abi.startsWith('6.1.0-'),
  )!.kernelrelease;
  const uncovered = await get(`/v1/modules/debian-bookworm/${rt}/x86_64`);
  assert.equal(uncovered.status, 404);
  assert.match(uncovered.body!.error!, /the support matrix does not cover it/);
  assert.match(uncovered.body!.remedy!, /support-matrix.json/);
  const malformed = await get('/v1/modules/debian-bookworm/..%2F..%2Fetc/x86_64');
  assert.equal(malformed.status, 400);

  // A kernel that does not exist, right after a crawl: no second crawl, and asked again, the
  // answer is remembered.
  const ghost = '6.1.0-999-amd64';
  for (let i = 0; i < 2; i++) assert.equal((await get(`/v1/modules/debian-bookworm/${ghost}/x86_64`)).status, 404);
  assert.equal(service.log().split('crawling debian bookworm x86_64').length - 1, 1, service.log());
  assert.match(service.log(), new RegExp(`${ghost}/x86_64: not covered \\(remembered\\)`));

  // The same from the command line.
  const cli = await ws.kmatrix(['request', 'debian-bookworm', older, 'x86_64', '--store', store]);
  assert.equal(cli.exitCode, 0, cli.all);
  assert.match(cli.stdout, /1 module for debian-bookworm .* x86_64 \(published\)/);
  const bad = await ws.kmatrix(['request', 'debian-bookworm', older, 'sparc']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /ARCH "sparc"/);

  // CI's next publish, from a checkout that never had the requested targets, keeps them.
  await service.stop();
  for (const release of [older, unseen, cached])
    await rm(join(ws.dir, 'targets/kmx-echo/debian-bookworm', release), { recursive: true });
  await ws.git(['checkout', '--', 'kernels']);
  const ci = expectOk(await ws.kmatrix(['publish', '--store', store]), 'publish (CI)');
  assert.match(ci.stdout, /^0 published, 4 unchanged;/m);
  const after = JSON.parse(await readFile(join(store, 'index.json'), 'utf8'));
  assert.equal(Object.keys(after.targets).length, 7);
  assert.equal(Object.values(after.targets).filter((e) => (e as { requested?: boolean }).requested).length, 3);
});
