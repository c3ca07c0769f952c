/**
 * Fedora, AlmaLinux and Amazon Linux 2023, served by local mirrors in their real repository
 * layouts (test/support/rpm-mirror.ts: rpmbuild, createrepo_c, repomd.xml signed by a test key),
 * go through kmatrix like Debian: a user crawls them, generates their targets, builds and boots
 * every one, and the second run comes entirely from the cache. A mirror whose repomd.xml is signed
 * by a key the user does not trust is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { serveDirectory } from '../support/http.ts';
import { archiveKey } from '../support/keys.ts';
import { buildRpmMirror, unameIn, type DebianKernel, type RpmRelease } from '../support/rpm-mirror.ts';
import { cacheHits, createWorkspace, expectOk, preparePipeline, testStore } from '../support/workspace.ts';

const RELEASES: (RpmRelease & { name: string; listKey: string })[] = [
  { name: 'fedora-41', distro: 'fedora', release: '41', tag: 'fc41', listKey: 'fedora' },
  { name: 'almalinux-9', distro: 'almalinux', release: '9', tag: 'el9', listKey: 'almalinux' },
  { name: 'amazonlinux-2023', distro: 'amazonlinux', release: '2023', tag: 'amzn2023', listKey: 'amazonlinux2023' },
];

test('a user builds and boots Fedora, AlmaLinux and Amazon Linux 2023 kernels from their own repositories', {
  timeout: 1_500_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-rpm-distros-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const debian = JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json')).debian as DebianKernel[];
  const kernel = debian
    .filter((k) => k.kmatrix.flavour === 'amd64' && k.kmatrix.abi.startsWith('6.1.0-') && k.kmatrix.image)
    .at(-1)!;

  const root = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-mirror-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const server = await serveDirectory(root);
  t.after(() => server.close());
  const key = await archiveKey(root, 'rpm-archive');
  const env = await buildRpmMirror(root, server.url, kernel, RELEASES, new HeaderStore(testStore), key);

  const policy = JSON.parse(await ws.read('support-matrix.json'));
  policy.matrix = [];
  for (const r of RELEASES) {
    policy.distros[r.name] = { family: 'rpm', distro: r.distro, release: r.release, toolchain: 'debian-bookworm' };
    policy.matrix.push({
      driver: 'kmx-echo',
      distro: r.name,
      archs: ['x86_64'],
      flavours: ['default'],
      kernels: ['6.1.*'],
    });
  }
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));

  // The crawl reads each signed repomd.xml and primary index; every kernel-devel arrives pinned.
  const crawl = expectOk(await ws.kmatrix(['crawl', 'rpm'], env), 'kmatrix crawl rpm');
  assert.match(crawl.stderr, /repomd\.xml: signed by a key in/);
  for (const r of RELEASES) {
    const { uname } = unameIn(kernel, r);
    const list = JSON.parse(await ws.read(`kernels/${r.name}-x86_64.json`));
    assert.deepEqual(Object.keys(list), [r.listKey]);
    const [entry] = list[r.listKey];
    assert.equal(entry.kernelrelease, uname);
    assert.equal(entry.kmatrix.packages[0].name, 'kernel-devel');
    assert.match(entry.kmatrix.packages[0].sha256, /^[0-9a-f]{64}$/);
    assert.equal(entry.kmatrix.image.name, r.distro === 'amazonlinux' ? 'kernel' : 'kernel-core');
  }

  // gen learns gcc 12 from kernel-devel's .config and picks the Debian toolchain that has it.
  expectOk(await ws.kmatrix(['gen'], env), 'kmatrix gen');
  const names: string[] = [];
  for (const r of RELEASES) {
    const { uname } = unameIn(kernel, r);
    const target = JSON.parse(await ws.read(`targets/kmx-echo/${r.name}/${uname}/x86_64/target.json`));
    assert.equal(target.kernelDir, `/usr/src/kernels/${uname}`);
    assert.equal(target.toolchain.name, 'debian-bookworm');
    assert.deepEqual(
      target.headers.map((h: { role: string }) => h.role),
      ['devel'],
    );
    names.push(target.name);
  }
  await ws.commitAll('rpm distros');

  const run = expectOk(
    await ws.nx(['run-many', '-t', 'build-driver,test-driver', '--output-style=stream'], env),
    'nx run-many -t build-driver,test-driver',
  );
  assert.deepEqual(cacheHits(run.all), { hits: 0, total: names.length * 2 });
  for (const r of RELEASES) {
    const { uname } = unameIn(kernel, r);
    const ko = join(ws.dir, 'dist/targets/kmx-echo', r.name, uname, 'x86_64/kmx_echo.ko');
    const { stdout: vermagic } = await execa('modinfo', ['-F', 'vermagic', ko]);
    assert.equal(vermagic.split(' ')[0], uname, `vermagic of ${r.name}`);
    const boot = JSON.parse(await ws.read(`dist/boot/targets/kmx-echo/${r.name}/${uname}/x86_64/result.json`));
    assert.equal(boot.status, 'loads', `${r.name}: ${boot.message}`);
    assert.match(boot.message, new RegExp(`on ${uname.replace(/[.+]/g, '\\$&')}`));
  }

  const again = expectOk(await ws.nx(['run-many', '-t', 'build-driver,test-driver'], env), 'second run');
  assert.deepEqual(cacheHits(again.all), { hits: names.length * 2, total: names.length * 2 });

  // The same mirror re-signed by a key nobody trusts: the crawl refuses it and writes nothing.
  const stranger = await archiveKey(root, 'stranger');
  const before = await ws.read('kernels/fedora-41-x86_64.json');
  const foreign = await ws.kmatrix(['crawl', 'rpm', '--release', '41', '--distro', 'fedora'], {
    ...env,
    KMATRIX_FEDORA_KEYRING: stranger.keyring,
  });
  assert.notEqual(foreign.exitCode, 0);
  assert.match(foreign.all, /repomd\.xml has no valid signature by a key in .*stranger\.gpg/);
  assert.equal(await ws.read('kernels/fedora-41-x86_64.json'), before);
});
