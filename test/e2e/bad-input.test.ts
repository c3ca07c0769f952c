/**
 * Bad input, as a user meets it: each gives a clear message naming the file, the field and the
 * remedy, exits non-zero, and leaves nothing behind (no targets, no store entries, no outputs).
 */
import { test } from 'node:test';
import { execa } from 'execa';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStanzas } from '../../tools/kmatrix/distros/deb/archive/deb822.ts';
import { kernelsFromIndex } from '../../tools/kmatrix/distros/deb/archive/crawl.ts';
import {
  BOOKWORM_AMD64_POLICY,
  createWorkspace,
  expectOk,
  repoRoot,
  type Workspace,
  writeTarget,
} from '../support/workspace.ts';
import { startServer } from '../support/http.ts';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';

async function workspaceWithKernelList(t: { after: (fn: () => Promise<void>) => void }): Promise<Workspace> {
  const ws = await createWorkspace('kmatrix-bad-');
  t.after(() => ws.remove());
  await ws.write('support-matrix.json', await readFile(join(repoRoot, BOOKWORM_AMD64_POLICY), 'utf8'));
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  const excerpt = await readFile(join(repoRoot, 'test/fixtures/bookworm-security-amd64-Packages.excerpt'), 'utf8');
  const kernels = kernelsFromIndex(
    parseStanzas(excerpt).map((stanza) => ({ stanza, baseUrl: 'http://127.0.0.1:9/debian-security' })),
    'debian-bookworm',
    'x86_64',
  );
  await ws.write('kernels/debian-bookworm-x86_64.json', `${JSON.stringify({ debian: kernels }, null, 2)}\n`);
  return ws;
}

/** A real linux-headers-<release> .deb made by dpkg-deb, holding one file under /usr/src, and the package as a target lists it. */
async function headerDeb(
  t: { after: (fn: () => Promise<void>) => void },
  release: string,
  version: string,
  file: string,
  content: string | Buffer,
): Promise<{ good: Buffer; pkg: { role: 'flavour'; name: string; version: string; sha256: string; size: number } }> {
  const tree = await mkdtemp(join(tmpdir(), 'kmatrix-deb-'));
  t.after(() => rm(tree, { recursive: true, force: true }));
  await mkdir(join(tree, 'pkg/DEBIAN'), { recursive: true });
  await mkdir(join(tree, `pkg/usr/src/linux-headers-${release}`), { recursive: true });
  await writeFile(join(tree, `pkg/usr/src/linux-headers-${release}`, file), content);
  await writeFile(
    join(tree, 'pkg/DEBIAN/control'),
    `Package: linux-headers-${release}\nVersion: ${version}\nArchitecture: amd64\nMaintainer: test <test@example.invalid>\nDescription: test\n`,
  );
  await execa('dpkg-deb', ['--build', '--root-owner-group', join(tree, 'pkg'), join(tree, 'good.deb')]);
  const good = await readFile(join(tree, 'good.deb'));
  const name = `linux-headers-${release}`;
  return {
    good,
    pkg: { role: 'flavour', name, version, sha256: createHash('sha256').update(good).digest('hex'), size: good.length },
  };
}

const treeOf = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : [];

/** Nothing was built: no output folder, no module, under dist/targets — only each target's result record (that it failed). */
function assertNothingBuilt(dir: string, why: string): void {
  const left = treeOf(join(dir, 'dist/targets')).filter(
    (f) => f.split('/').length > 3 && !/\/[^/]+\.result\.json$/.test(f),
  );
  assert.deepEqual(left, [], why);
}

test('every command answers --help; an unknown command is a usage error', async (t) => {
  const ws = await createWorkspace('kmatrix-help-');
  t.after(() => ws.remove());
  for (const args of [
    ['--help'],
    ['crawl', '--help'],
    ['gen', '--help'],
    ['toolchain', '--help'],
    ['build', '--help'],
    ['schema', '--help'],
    ['diff', '--help'],
    ['serve-cache', '--help'],
    ['cache', '--help'],
    ['reproduce', '--help'],
    ['report', '--help'],
    ['driver', '--help'],
  ]) {
    const r = await ws.kmatrix(args);
    assert.equal(r.exitCode, 0, args.join(' '));
    assert.match(r.stdout, /^Usage: npx kmatrix/);
  }
  const bad = await ws.kmatrix(['frobnicate']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
  const badFlag = await ws.kmatrix(['gen', '--no-such-flag']);
  assert.equal(badFlag.exitCode, 2);
  assert.match(badFlag.stderr, /see `npx kmatrix gen --help`/);
});

test('an invalid policy lists each problem with its JSON path and writes nothing', async (t) => {
  const ws = await workspaceWithKernelList(t);
  const policy = JSON.parse(await ws.read('support-matrix.json'));
  policy.matrix[0].archs = ['arm'];
  policy.matrix[0].flavors = ['amd64']; // typo of "flavours"
  policy.matrix.push({ ...policy.matrix[0], driver: 'no-such-driver', archs: ['x86_64'], flavors: undefined });
  policy.drivers['../escape'] = { path: 'drivers/x', modules: ['x'] };
  policy.drivers.evil = { path: '../outside', modules: ['x'] };
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));

  const r = await ws.kmatrix(['gen']);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /invalid support-matrix policy in support-matrix\.json/);
  assert.match(r.stderr, /support-matrix\.json: matrix\[0\]\.archs\[0\]: .*x86_64/);
  assert.match(r.stderr, /support-matrix\.json: matrix\[0\]: Unrecognized key: "flavors"/);
  assert.match(r.stderr, /support-matrix\.json: matrix\[1\]\.driver: unknown driver "no-such-driver"/);
  assert.match(
    r.stderr,
    /support-matrix\.json: drivers\["\.\.\/escape"\]: invalid key: must be lower-case letters.*must not contain "\.\."/,
  );
  assert.match(r.stderr, /support-matrix\.json: drivers\.evil\.path: must be a relative path inside the repository/);
  assert.match(r.stderr, /nothing was written/);
  assert.deepEqual(treeOf(join(ws.dir, 'targets')), []);
});

test('a malformed kernel list is rejected with its path and leaves targets/ as it was', async (t) => {
  const ws = await workspaceWithKernelList(t);
  expectOk(await ws.kmatrix(['gen']), 'gen with a good list');
  const before = treeOf(join(ws.dir, 'targets'));
  assert.ok(before.some((f) => f.endsWith('target.json')));
  const targetBytes = await ws.read(join('targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64/target.json'));

  const list = JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json'));
  list.debian[1].kmatrix.packages[0].sha256 = 'not-a-digest';
  list.debian[2].kmatrix.arch = 'sparc';
  await ws.write('kernels/debian-bookworm-x86_64.json', JSON.stringify(list));
  const r = await ws.kmatrix(['gen']);
  assert.equal(r.exitCode, 1);
  assert.match(
    r.stderr,
    /kernels\/debian-bookworm-x86_64\.json: debian\[1\]\.kmatrix\.packages\[0\]\.sha256: must be 64 lower-case hex digits/,
  );
  assert.match(r.stderr, /kernels\/debian-bookworm-x86_64\.json: debian\[2\]\.kmatrix\.arch/);
  assert.match(r.stderr, /npx kmatrix crawl/);

  await ws.write('kernels/debian-bookworm-x86_64.json', '{ "debian": [ ');
  const r2 = await ws.kmatrix(['gen']);
  assert.equal(r2.exitCode, 1);
  assert.match(r2.stderr, /kernels\/debian-bookworm-x86_64\.json is not valid JSON/);

  assert.deepEqual(treeOf(join(ws.dir, 'targets')), before);
  assert.equal(await ws.read(join('targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64/target.json')), targetBytes);
});

test('a bad kernel-crawler list is rejected naming the entry, and nothing is written', async (t) => {
  const ws = await workspaceWithKernelList(t);
  expectOk(await ws.kmatrix(['gen']), 'gen with a good list');
  const before = treeOf(join(ws.dir, 'targets'));
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-bad-store-'));
  t.after(() => rm(store, { recursive: true, force: true }));
  const good = JSON.parse(await readFile(join(repoRoot, 'test/fixtures/kernel-crawler/current-x86_64.json'), 'utf8'));
  const entry = good.debian[0];
  const cases: [string, unknown, RegExp][] = [
    [
      'path in kernelrelease',
      { debian: [{ ...entry, kernelrelease: '../../etc' }] },
      /crawler\.json: debian\[0\]\.kernelrelease: must be a kernel release/,
    ],
    [
      'shell in kernelrelease',
      { debian: [{ ...entry, kernelrelease: '6.1;rm -rf $HOME' }] },
      /crawler\.json: debian\[0\]\.kernelrelease: must be a kernel release/,
    ],
    [
      'not an http URL',
      { debian: [{ ...entry, headers: ['file:///etc/passwd', ...entry.headers] }] },
      /crawler\.json: debian\[0\]\.headers\[0\]: must be an http\(s\) URL/,
    ],
    [
      'ftp URL',
      { ubuntu: [{ ...entry, target: 'ubuntu-generic', headers: ['ftp://archive.ubuntu.com/x.deb'] }] },
      /crawler\.json: ubuntu\[0\]\.headers\[0\]: must be an http\(s\) URL/,
    ],
    ['not a list', { debian: { kernelrelease: 'x' } }, /crawler\.json: debian: /],
  ];
  for (const [what, list, expected] of cases) {
    await ws.write('crawler.json', JSON.stringify(list, null, 2));
    const r = await ws.kmatrix(['gen', '--kernels', 'crawler.json'], { KMATRIX_STORE: store });
    assert.equal(r.exitCode, 1, what);
    assert.match(r.stderr, /invalid kernel list in crawler\.json/, what);
    assert.match(r.stderr, expected, what);
  }
  // A distro key kmatrix does not know and a repeated entry are not malformed: each costs only itself.
  const minikube = {
    kernelversion: '1',
    kernelrelease: '4.19.202',
    target: 'minikube',
    kernelconfigdata: 'Q09ORklHX1g9eQo=',
  };
  await ws.write('crawler.json', JSON.stringify({ Slackware: [entry], Minikube: [minikube, { ...minikube }] }));
  const odd = expectOk(await ws.kmatrix(['gen', '--kernels', 'crawler.json', '--dry-run', '--verbose']), 'odd list');
  assert.match(
    odd.all,
    /^skipped Minikube 4\.19\.202: a duplicate of Minikube\[0\] \(same target, kernelrelease and kernelversion\)$/m,
  );
  assert.match(odd.all, /^skipped 1 Slackware kernels?: no distro family of kmatrix reads Slackware kernels/m);
  const text = await readFile(join(repoRoot, 'test/fixtures/kernel-crawler/x86_64-sample.json'), 'utf8');
  await ws.write('crawler.json', text.slice(0, text.length / 2)); // a download cut short
  const truncated = await ws.kmatrix(['gen', '--kernels', 'crawler.json']);
  assert.equal(truncated.exitCode, 1);
  assert.match(truncated.stderr, /crawler\.json is not valid JSON/);

  assert.deepEqual(treeOf(join(ws.dir, 'targets')), before);
  assert.deepEqual(treeOf(store), [], 'nothing was downloaded');
});

test('a header package with the wrong SHA256, or cut short by the server, never enters the store', {
  timeout: 120_000,
}, async (t) => {
  const junk = Buffer.alloc(64 * 1024, 7);
  const server = await startServer((req, res) => {
    if (req.url === '/wrong.deb') {
      res.writeHead(200, { 'content-length': junk.length });
      res.end(junk);
    } else if (req.url === '/truncated.deb') {
      res.writeHead(200, { 'content-length': junk.length });
      res.write(junk.subarray(0, 1000), () => res.destroy());
    } else {
      res.writeHead(404).end();
    }
  });
  t.after(() => server.close());
  const ws = await workspaceWithKernelList(t);
  expectOk(await ws.kmatrix(['gen']), 'gen');
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-store-'));
  const file = 'targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64/target.json';
  const target = JSON.parse(await ws.read(file));
  const claimed = createHash('sha256').update('what the index promised').digest('hex');

  target.headers = [{ ...target.headers[0], url: `${server.url}/wrong.deb`, sha256: claimed, size: junk.length }];
  await writeTarget(ws, file, target);
  const r = await ws.kmatrix(['build', file], { KMATRIX_STORE: store });
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, new RegExp(`SHA256 mismatch for ${target.headers[0].name}.*expected ${claimed}`));
  assert.match(r.stderr, /nothing was stored/);
  assert.equal(server.hits.get('/wrong.deb'), 1, 'a digest mismatch is not retried');

  target.headers = [
    {
      ...target.headers[0],
      url: `${server.url}/truncated.deb`,
      sha256: createHash('sha256').update(junk).digest('hex'),
    },
  ];
  await writeTarget(ws, file, target);
  const r2 = await ws.kmatrix(['build', file], { KMATRIX_STORE: store });
  assert.equal(r2.exitCode, 1);
  assert.match(
    r2.stderr,
    /cannot download linux-headers-.*: connection closed by the server from .*truncated\.deb \(4 attempts\)/,
  );
  assert.ok(server.hits.get('/truncated.deb')! >= 4, 'network faults are retried');

  assert.deepEqual(treeOf(join(store, 'debs')), [], 'no package, whole or partial, in the store');
  assert.deepEqual(treeOf(join(store, 'trees')), []);
  // What did arrive waits outside the store's packages, to be resumed (HTTP Range) next time.
  assert.equal(treeOf(join(store, 'partial')).length, 1);
  assertNothingBuilt(ws.dir, 'no output folder');
});

test('a mirror answering 500, then cutting the package short, then sending wrong bytes: retried, then a clear error; the right bytes later are stored once', {
  timeout: 120_000,
}, async (t) => {
  // A real (tiny) header package, so the store can unpack what finally arrives.
  const { good, pkg } = await headerDeb(t, '6.1.0-99-amd64', '6.1.999-1', 'Makefile', 'all:\n');
  const wrong = Buffer.from(good).fill(7, 200);
  const answers: Record<string, ((res: import('node:http').ServerResponse) => void)[]> = {};
  const sequence = (path: string, last: Buffer) => {
    answers[path] = [
      (res) => res.writeHead(500).end('upstream broke'),
      (res) => res.writeHead(200, { 'content-length': good.length }).write(good.subarray(0, 300), () => res.destroy()),
      (res) => res.writeHead(200, { 'content-length': last.length }).end(last),
    ];
  };
  sequence('/bad.deb', wrong);
  sequence('/good.deb', good);
  const server = await startServer((req, res) => {
    const next = answers[req.url ?? '']?.shift();
    if (next) next(res);
    else res.writeHead(404).end();
  });
  t.after(() => server.close());
  const storeDir = await mkdtemp(join(tmpdir(), 'kmatrix-store-'));
  t.after(() => rm(storeDir, { recursive: true, force: true }));
  const log: string[] = [];
  const store = new HeaderStore(storeDir, (l) => log.push(l));

  await assert.rejects(store.tree({ ...pkg, url: `${server.url}/bad.deb` }), (e: Error) => {
    assert.match(e.message, new RegExp(`SHA256 mismatch for ${pkg.name} 6\\.1\\.999-1: expected ${pkg.sha256}`));
    return true;
  });
  assert.equal(server.hits.get('/bad.deb'), 3, 'the 500 and the short read were retried; the wrong bytes were not');
  assert.equal(log.filter((l) => /retry \d+:/.test(l)).length, 2);
  assert.deepEqual(
    treeOf(storeDir).filter((f) => f !== 'debs' && f !== 'locks' && f !== 'partial'), // the folders, empty: no lock left either
    [],
    'no package, whole or partial, and no tree',
  );

  const unpacked = await store.tree({ ...pkg, url: `${server.url}/good.deb` });
  assert.equal(server.hits.get('/good.deb'), 3);
  assert.ok(existsSync(join(unpacked, 'usr/src/linux-headers-6.1.0-99-amd64/Makefile')));
  assert.deepEqual(treeOf(join(storeDir, 'debs')), [`${pkg.sha256}.deb`], 'exactly the verified package');
  assert.deepEqual(await readFile(join(storeDir, 'debs', `${pkg.sha256}.deb`)), good);
});

test('a download cut short resumes where it stopped (HTTP Range); a wrong range starts over, wrong bytes are refused whole', {
  timeout: 120_000,
}, async (t) => {
  // Incompressible content, so the package is big enough to cut in half.
  const { good, pkg } = await headerDeb(t, '6.1.0-98-amd64', '6.1.998-1', 'blob', randomBytes(512 * 1024));
  const half = Math.floor(good.length / 2);
  type Answer = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => number;
  // The first answer of each path sends half the package, lets it arrive, then drops the connection.
  const cut: Answer = (_q, res) => {
    res.writeHead(200, { 'content-length': good.length }).write(good.subarray(0, half));
    setTimeout(() => res.destroy(), 200);
    return half;
  };
  /** Serves the range asked for (all of it without one) from `bytes` (default: the package's own). */
  const ranged =
    (bytes = good): Answer =>
    (req, res) => {
      const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
      const headers = from ? { 'content-range': `bytes ${from}-${good.length - 1}/${good.length}` } : {};
      res.writeHead(from ? 206 : 200, { ...headers, 'content-length': good.length - from }).end(bytes.subarray(from));
      return good.length - from;
    };
  const otherRange: Answer = (_q, res) => {
    const headers = { 'content-range': `bytes 0-${good.length - 1}/${good.length}`, 'content-length': good.length };
    res.writeHead(206, headers).end(good);
    return good.length;
  };
  const plans: Record<string, Answer[]> = {
    '/resumes.deb': [cut, ranged()],
    '/other-range.deb': [cut, otherRange, ranged()],
    '/poisoned.deb': [cut, ranged(Buffer.alloc(good.length, 9))],
  };
  const seen: { path: string; range?: string; sent: number }[] = [];
  const server = await startServer((req, res) => {
    const answer = plans[req.url ?? '']?.shift();
    if (!answer) return void res.writeHead(404).end();
    seen.push({ path: req.url!, ...(req.headers.range ? { range: req.headers.range } : {}), sent: answer(req, res) });
  });
  t.after(() => server.close());
  const storeDir = await mkdtemp(join(tmpdir(), 'kmatrix-store-'));
  t.after(() => rm(storeDir, { recursive: true, force: true }));
  const log: string[] = [];
  const store = new HeaderStore(storeDir, (l) => log.push(l));

  // Cut at half, resumed with a Range request: only the rest crosses the wire again.
  await store.tree({ ...pkg, url: `${server.url}/resumes.deb` });
  const [first, again] = seen.filter((s) => s.path === '/resumes.deb');
  assert.equal(first?.range, undefined);
  const from = Number(again?.range?.match(/^bytes=(\d+)-$/)?.[1]);
  assert.ok(from > 0, `resumed with ${again?.range}`);
  assert.equal(again?.sent, good.length - from);
  assert.ok(
    log.some((l) => /resuming .*resumes\.deb at/.test(l)),
    log.join('\n'),
  );
  assert.deepEqual(treeOf(join(storeDir, 'debs')), [`${pkg.sha256}.deb`]);
  assert.deepEqual(await readFile(join(storeDir, 'debs', `${pkg.sha256}.deb`)), good);
  assert.deepEqual(treeOf(join(storeDir, 'partial')), [], 'the partial file became the package');

  // A 206 for another range than asked: started over, and the right bytes still arrive.
  const otherDir = await mkdtemp(join(tmpdir(), 'kmatrix-store-'));
  t.after(() => rm(otherDir, { recursive: true, force: true }));
  await new HeaderStore(otherDir, () => {}).tree({ ...pkg, url: `${server.url}/other-range.deb` });
  const others = seen.filter((s) => s.path === '/other-range.deb').map((s) => s.range);
  assert.equal(others.length, 3);
  assert.match(others[1] ?? '', /^bytes=\d+-$/);
  assert.equal(others[2], undefined, 'the next request asks for the whole package');

  // The rest served as other bytes: the whole file fails its SHA256; nothing kept, not even the part.
  const poisonedDir = await mkdtemp(join(tmpdir(), 'kmatrix-store-'));
  t.after(() => rm(poisonedDir, { recursive: true, force: true }));
  const poisoned = new HeaderStore(poisonedDir, () => {});
  await assert.rejects(poisoned.tree({ ...pkg, url: `${server.url}/poisoned.deb` }), /SHA256 mismatch/);
  assert.deepEqual(treeOf(join(poisonedDir, 'debs')), []);
  assert.deepEqual(treeOf(join(poisonedDir, 'partial')), [], 'bytes that failed the check are never resumed');
});

test('a hand-edited target.json with a path outside the repo is rejected by nx and by the build, also after nx saw it valid', async (t) => {
  const ws = await workspaceWithKernelList(t);
  expectOk(await ws.kmatrix(['gen']), 'gen');
  await ws.commitAll('targets');
  const projects = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  ) as string[];
  const file = 'targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64/target.json';
  const good = await ws.read(file);

  // nx has read and remembered this file; its new bytes are checked again.
  const evil = JSON.parse(good);
  evil.driver.path = '../../outside';
  await ws.write(file, JSON.stringify(evil, null, 2));
  const shown = await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']);
  assert.notEqual(shown.exitCode, 0);
  assert.match(shown.all, new RegExp(`${file.replace(/[.+]/g, '\\$&')}: driver\\.path: `));
  assert.match(shown.all, /run `npx kmatrix gen` to regenerate targets\//);
  const built = await ws.kmatrix(['build', file, '--json']);
  assert.equal(built.exitCode, 1);
  assert.match(built.stderr, /driver\.path/);
  const builtDoc = JSON.parse(built.stdout);
  assert.deepEqual([builtDoc.command, builtDoc.ok, builtDoc.result], ['build', false, undefined]);
  assert.ok(
    builtDoc.error.problems.some((p: string) => p.includes('driver.path')),
    built.stdout,
  );
  assertNothingBuilt(ws.dir, 'nothing built');

  await ws.write(file, good);
  assert.deepEqual(
    JSON.parse(
      expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects again')
        .stdout,
    ),
    projects,
  );
});

test('a full disk under the header store is a clear error, not a network retry, and leaves the store intact', {
  timeout: 120_000,
}, async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024, 9);
  const server = await startServer((_req, res) => res.writeHead(200, { 'content-length': big.length }).end(big));
  t.after(() => server.close());
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-full-'));
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', store]);
  t.after(async () => {
    await execa('umount', [store]).catch(() => {});
    await rm(store, { recursive: true, force: true });
  });
  const ws = await workspaceWithKernelList(t);
  expectOk(await ws.kmatrix(['gen']), 'gen');
  const file = 'targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64/target.json';
  const target = JSON.parse(await ws.read(file));
  target.headers = [
    {
      ...target.headers[0],
      url: `${server.url}/big.deb`,
      sha256: createHash('sha256').update(big).digest('hex'),
      size: big.length,
    },
  ];
  await writeTarget(ws, file, target);

  const r = await ws.kmatrix(['build', file], { KMATRIX_STORE: store });
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, new RegExp(`cannot write to the header store ${store}: no space left on device`));
  assert.match(r.stderr, /point KMATRIX_STORE at a larger disk/);
  assert.equal(server.hits.get('/big.deb'), 1, 'a full disk is not retried like a network fault');
  assert.deepEqual(
    treeOf(store).filter((f) => f !== 'debs' && f !== 'locks' && f !== 'partial'), // the folders, empty
    [],
    'no partial package, no temp file',
  );
  assertNothingBuilt(ws.dir, 'no output folder');
});

test('an unreachable Docker engine is a clear error with the remedy, from the CLI and from nx', async (t) => {
  const ws = await workspaceWithKernelList(t);
  expectOk(await ws.kmatrix(['gen']), 'gen');
  await ws.commitAll('targets');
  const noDocker = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };

  const r = await ws.kmatrix(['build', 'kmx-echo--debian-bookworm--6.1.0-57-amd64--x86_64'], noDocker);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /Docker engine not reachable at \/nonexistent\/docker\.sock/);
  assert.match(r.stderr, /start it with `dockerd/);

  const viaNx = await ws.nx(
    ['run', 'kmx-echo--debian-bookworm--6.1.0-57-amd64--x86_64:build-driver', '--skip-nx-cache'],
    noDocker,
  );
  assert.notEqual(viaNx.exitCode, 0);
  assert.match(viaNx.all, /Docker engine not reachable at \/nonexistent\/docker\.sock/);
  const out = join(ws.dir, 'dist/targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64');
  assert.ok(!existsSync(out), 'no output folder');
  // The run summary blames the infrastructure, not the driver.
  assert.match(
    viaNx.all,
    /kmx-echo--debian-bookworm--6\.1\.0-57-amd64--x86_64: infrastructure \(docker\): Docker engine not reachable/,
  );
  const result = JSON.parse(await readFile(`${out}.result.json`, 'utf8'));
  assert.equal(result.outcome, 'failed');
  assert.equal(result.failure.kind, 'infrastructure');
});

test('a distro missing from the kernel list (its crawl failed) keeps its targets, with a warning', async (t) => {
  const ws = await workspaceWithKernelList(t);
  expectOk(await ws.kmatrix(['gen']), 'gen with a good list');
  const before = treeOf(join(ws.dir, 'targets'));
  await ws.write('kernels/debian-bookworm-x86_64.json', '{ "ubuntu": [] }\n');
  const r = expectOk(await ws.kmatrix(['gen']), 'gen without debian');
  assert.match(
    r.stderr,
    /warning: no kernels of debian-bookworm in the kernel lists \(did its crawl fail\?\): keeping its existing targets unchanged/,
  );
  assert.match(r.stderr, /0 added, 0 changed, 0 removed, 3 unchanged/);
  assert.deepEqual(treeOf(join(ws.dir, 'targets')), before);
});
