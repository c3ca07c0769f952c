/**
 * Ubuntu (generic and aws), Fedora, AlmaLinux and Amazon Linux 2023, served by local mirrors in
 * their real archive layouts (test/support/ubuntu-mirror.ts: dpkg-deb, apt-ftparchive, InRelease
 * signed by a test key; test/support/rpm-mirror.ts: rpmbuild, createrepo_c, repomd.xml signed by
 * a test key), go through kmatrix like Debian: a user crawls them, generates their targets, builds
 * and boots every one, and the second run comes entirely from the cache. A mirror signed by a key
 * the user does not trust is refused.
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
import { buildUbuntuMirror, ubuntuNames, type UbuntuKernel } from '../support/ubuntu-mirror.ts';
import { cacheHits, createWorkspace, expectOk, preparePipeline, testStore } from '../support/workspace.ts';

const RELEASES: (RpmRelease & { name: string; listKey: string })[] = [
  { name: 'fedora-41', distro: 'fedora', release: '41', tag: 'fc41', listKey: 'fedora' },
  { name: 'almalinux-9', distro: 'almalinux', release: '9', tag: 'el9', listKey: 'almalinux' },
  { name: 'amazonlinux-2023', distro: 'amazonlinux', release: '2023', tag: 'amzn2023', listKey: 'amazonlinux2023' },
];

const UBUNTU: UbuntuKernel[] = [
  { flavour: 'generic', abiNumber: '57' },
  { flavour: 'aws', abiNumber: '1057' },
];

test('a user builds and boots Ubuntu, Fedora, AlmaLinux and Amazon Linux 2023 kernels from their own archives', {
  timeout: 1_500_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-distros-');
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
  const store = new HeaderStore(testStore);
  const env = {
    ...(await buildRpmMirror(root, server.url, kernel, RELEASES, store, key)),
    ...(await buildUbuntuMirror(root, server.url, kernel, UBUNTU, 'jammy', store, key)),
  };

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
  policy.distros['ubuntu-jammy'] = { family: 'deb', distro: 'ubuntu', release: 'jammy', toolchain: 'debian-bookworm' };
  policy.matrix.push({
    driver: 'kmx-echo',
    distro: 'ubuntu-jammy',
    archs: ['x86_64'],
    flavours: ['generic', 'aws'],
    kernels: ['6.1.0-*'],
  });
  delete policy.distros['debian-bookworm'];
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));

  // Ubuntu: the signed InRelease, then Packages; each kernel is its flavour package and the shared tree it pins.
  expectOk(await ws.kmatrix(['crawl', 'deb'], env), 'kmatrix crawl deb');
  const jammy = JSON.parse(await ws.read('kernels/ubuntu-jammy-x86_64.json'));
  assert.deepEqual(Object.keys(jammy), ['ubuntu']);
  for (const k of UBUNTU) {
    const n = ubuntuNames(kernel, k);
    const entry = jammy.ubuntu.find((e: { kernelrelease: string }) => e.kernelrelease === n.uname);
    assert.ok(entry, `${n.uname} in the Ubuntu list`);
    assert.deepEqual(
      entry.kmatrix.packages.map((p: { role: string; name: string }) => `${p.role} ${p.name}`),
      [`flavour linux-headers-${n.uname}`, `common ${n.common}`],
    );
    assert.equal(entry.kmatrix.image.name, `linux-image-unsigned-${n.uname}`);
  }

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
  const built: { distro: string; uname: string }[] = [
    ...UBUNTU.map((k) => ({ distro: 'ubuntu-jammy', uname: ubuntuNames(kernel, k).uname })),
    ...RELEASES.map((r) => ({ distro: r.name, uname: unameIn(kernel, r).uname })),
  ];
  for (const k of UBUNTU) {
    const { uname } = ubuntuNames(kernel, k);
    const target = JSON.parse(await ws.read(`targets/kmx-echo/ubuntu-jammy/${uname}/x86_64/target.json`));
    assert.equal(target.kernelDir, `/usr/src/linux-headers-${uname}`);
    assert.deepEqual(
      target.headers.map((h: { role: string }) => h.role),
      ['common', 'flavour'],
    );
    names.push(target.name);
  }
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
  await ws.commitAll('ubuntu and rpm distros');

  const projects = `--projects=${names.join(',')}`;
  const run = expectOk(
    await ws.nx(['run-many', '-t', 'build-driver,test-driver', projects, '--output-style=stream'], env),
    'nx run-many -t build-driver,test-driver',
  );
  assert.deepEqual(cacheHits(run.all), { hits: 0, total: names.length * 2 });
  for (const { distro, uname } of built) {
    const ko = join(ws.dir, 'dist/targets/kmx-echo', distro, uname, 'x86_64/kmx_echo.ko');
    const { stdout: vermagic } = await execa('modinfo', ['-F', 'vermagic', ko]);
    assert.equal(vermagic.split(' ')[0], uname, `vermagic of ${distro}`);
    const boot = JSON.parse(await ws.read(`dist/boot/targets/kmx-echo/${distro}/${uname}/x86_64/result.json`));
    assert.equal(boot.status, 'loads', `${distro}: ${boot.message}`);
    assert.match(boot.message, new RegExp(`on ${uname.replace(/[.+]/g, '\\$&')}`));
  }

  const again = expectOk(await ws.nx(['run-many', '-t', 'build-driver,test-driver', projects], env), 'second run');
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
  const ubuntuBefore = await ws.read('kernels/ubuntu-jammy-x86_64.json');
  const forged = await ws.kmatrix(['crawl', 'deb', '--release', 'jammy', '--distro', 'ubuntu'], {
    ...env,
    KMATRIX_UBUNTU_KEYRING: stranger.keyring,
  });
  assert.notEqual(forged.exitCode, 0);
  assert.match(forged.all, /jammy\/InRelease has no valid signature by a key in .*stranger\.gpg/);
  assert.equal(await ws.read('kernels/ubuntu-jammy-x86_64.json'), ubuntuBefore);
});
