/**
 * Ubuntu (generic and aws), Fedora, AlmaLinux, Amazon Linux 2 and 2023, served by local mirrors in
 * their real archive layouts (test/support/ubuntu-mirror.ts: dpkg-deb, apt-ftparchive, InRelease
 * signed by a test key; test/support/rpm-mirror.ts: rpmbuild, createrepo_c, repomd.xml signed by
 * a test key), go through kmatrix like Debian: a user crawls them, generates their targets, builds
 * and boots every one — x86_64 for all, and aarch64 for one distro of each family (Ubuntu generic,
 * Fedora), whose arm64 host programs run under qemu-user — and the second run comes entirely from
 * the cache. Debian 11, 12 and 13 come from the real archive beside them, each built by its own
 * toolchain and booted. Ubuntu noble, Fedora 42 and AlmaLinux 8 are crawled and generated only
 * (the layouts of jammy, 41 and 9); Amazon Linux 2023 has both its 6.1 and its kernel6.12 streams. A mirror signed by a
 * key the user does not trust is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Arch } from '../../tools/kmatrix/model/names.ts';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { serveDirectory } from '../support/http.ts';
import { archiveKey } from '../support/keys.ts';
import { buildRpmMirror, type RpmRelease, unameIn } from '../support/rpm-mirror.ts';
import type { DebianKernel } from '../support/repackage.ts';
import { buildUbuntuMirror, type UbuntuKernel, ubuntuNames } from '../support/ubuntu-mirror.ts';
import { cacheHits, createWorkspace, expectOk, preparePipeline, testStore } from '../support/workspace.ts';
import { startRequestService } from '../support/request-service.ts';

/**
 * Debian's kernel each distro's packages carry: bookworm's 6.1 (gcc 12); bookworm's 6.12 (gcc 12)
 * for Amazon Linux 2023's kernel6.12 stream; bullseye's 5.10 (gcc 10) for Amazon Linux 2.
 */
type Base = 'bookworm' | 'bookworm-6.12' | 'bullseye';
/** `build: false`: crawled and generated only (the same layout as a release that is built and booted). */
type Release = RpmRelease & {
  name: string;
  listKey: string;
  archs: Arch[];
  base: Base;
  kernels: string;
  build?: false;
};
const RELEASES: Release[] = [
  {
    name: 'fedora-41',
    distro: 'fedora',
    release: '41',
    tag: 'fc41',
    listKey: 'fedora',
    archs: ['x86_64', 'aarch64'],
    base: 'bookworm',
    kernels: '6.1.*',
  },
  {
    name: 'almalinux-9',
    distro: 'almalinux',
    release: '9',
    tag: 'el9',
    listKey: 'almalinux',
    archs: ['x86_64'],
    base: 'bookworm',
    kernels: '6.1.*',
  },
  {
    name: 'amazonlinux-2023',
    distro: 'amazonlinux',
    release: '2023',
    tag: 'amzn2023',
    listKey: 'amazonlinux2023',
    archs: ['x86_64'],
    base: 'bookworm',
    kernels: '6.1.*',
  },
  {
    name: 'amazonlinux-2023',
    distro: 'amazonlinux',
    release: '2023',
    tag: 'amzn2023',
    stream: '6.12',
    listKey: 'amazonlinux2023',
    archs: ['x86_64'],
    base: 'bookworm-6.12',
    kernels: '6.12.*',
  },
  {
    name: 'amazonlinux-2',
    distro: 'amazonlinux',
    release: '2',
    tag: 'amzn2',
    listKey: 'amazonlinux2',
    archs: ['x86_64'],
    base: 'bullseye',
    kernels: '5.10.*',
  },
  {
    name: 'fedora-42',
    distro: 'fedora',
    release: '42',
    tag: 'fc42',
    listKey: 'fedora',
    archs: ['x86_64'],
    base: 'bookworm',
    kernels: '6.1.*',
    build: false,
  },
  {
    name: 'almalinux-8',
    distro: 'almalinux',
    release: '8',
    tag: 'el8',
    listKey: 'almalinux',
    archs: ['x86_64'],
    base: 'bookworm',
    kernels: '6.1.*',
    build: false,
  },
];
const TOOLCHAIN: Record<Base, string> = {
  bookworm: 'debian-bookworm',
  'bookworm-6.12': 'debian-bookworm',
  bullseye: 'debian-bullseye',
};
const UBUNTU: (UbuntuKernel & { archs: Arch[] })[] = [
  { flavour: 'generic', abiNumber: '57', archs: ['x86_64', 'aarch64'] },
  { flavour: 'aws', abiNumber: '1057', archs: ['x86_64'] },
];
const NOBLE: UbuntuKernel = { flavour: 'generic', abiNumber: '58' };
const ARCHS: Arch[] = ['x86_64', 'aarch64'];

/** The newest kernel of the plain flavour of a Debian release for `arch`, with its image. */
async function debianKernel(
  ws: { read(p: string): Promise<string> },
  base: Base | 'trixie',
  arch: Arch,
): Promise<DebianKernel> {
  const list = JSON.parse(await ws.read(`kernels/debian-${base.split('-')[0]}-${arch}.json`)).debian as DebianKernel[];
  const plain = arch === 'x86_64' ? 'amd64' : 'arm64';
  const series = { bookworm: '6.1.0-', 'bookworm-6.12': '6.12.', bullseye: '5.10.0-', trixie: '6.12.' }[base];
  return list.filter((k) => k.kmatrix.flavour === plain && k.kmatrix.abi.startsWith(series) && k.kmatrix.image).at(-1)!;
}

test('a user builds and boots Ubuntu, Fedora, AlmaLinux, Amazon Linux 2 and 2023 kernels from their own archives', {
  timeout: 1_800_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-distros-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  expectOk(await ws.kmatrix(['crawl', 'deb', '--release', 'bookworm', '--arch', 'aarch64']), 'crawl bookworm arm64');
  // Debian 11 and 13 beside 12, from the real archive, each with its own toolchain (gcc 10, gcc 14);
  // Amazon Linux 2's 5.10 kernels are built with gcc 10 too: bullseye's toolchain builds them.
  const withDebian = JSON.parse(await ws.read('support-matrix.json'));
  for (const release of ['bullseye', 'trixie']) {
    expectOk(await ws.kmatrix(['crawl', 'deb', '--release', release, '--arch', 'x86_64']), `crawl ${release}`);
    withDebian.distros[`debian-${release}`] = { family: 'deb', release, toolchain: `debian-${release}` };
    await ws.write('support-matrix.json', JSON.stringify(withDebian, null, 2));
    expectOk(await ws.kmatrix(['toolchain', 'build', `debian-${release}`]), `toolchain build debian-${release}`);
  }
  const kernels = {
    x86_64: await debianKernel(ws, 'bookworm', 'x86_64'),
    aarch64: await debianKernel(ws, 'bookworm', 'aarch64'),
  };
  const bullseye = await debianKernel(ws, 'bullseye', 'x86_64');
  const bookworm612 = await debianKernel(ws, 'bookworm-6.12', 'x86_64');
  const trixie = await debianKernel(ws, 'trixie', 'x86_64');
  const kernelOf = (r: Release, arch: Arch) =>
    r.base === 'bookworm' ? kernels[arch] : r.base === 'bullseye' ? bullseye : bookworm612;

  const root = await mkdtemp(join(tmpdir(), 'kmatrix-distro-mirrors-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const server = await serveDirectory(root);
  t.after(() => server.close());
  const key = await archiveKey(root, 'archive');
  const store = new HeaderStore(testStore);
  let env: Record<string, string> = {};
  for (const arch of ARCHS) {
    const ubuntu = UBUNTU.filter((k) => k.archs.includes(arch));
    env = { ...env, ...(await buildUbuntuMirror(root, server.url, kernels[arch], ubuntu, 'jammy', store, key)) };
    // Ubuntu 24.04 beside 22.04 (amd64): its own suites in the same archive, crawled and generated.
    if (arch === 'x86_64')
      env = { ...env, ...(await buildUbuntuMirror(root, server.url, kernels[arch], [NOBLE], 'noble', store, key)) };
    for (const base of ['bookworm', 'bookworm-6.12', 'bullseye'] as const) {
      const rpms = RELEASES.filter((r) => r.archs.includes(arch) && r.base === base);
      if (rpms.length > 0)
        env = { ...env, ...(await buildRpmMirror(root, server.url, kernelOf(rpms[0]!, arch), rpms, store, key)) };
    }
  }
  /** Every target the test expects: distro, uname -r, arch. */
  const expected = ARCHS.flatMap((arch) => [
    // Debian, from the real archive, beside them: the grid has all six distros.
    ...(arch === 'x86_64'
      ? [
          ...(
            [
              ['debian-bookworm', kernels.x86_64],
              ['debian-bullseye', bullseye],
              ['debian-trixie', trixie],
            ] as const
          ).map(([distro, k]) => ({ distro, uname: k.kernelrelease, arch, family: 'deb', toolchain: distro })),
        ]
      : []),
    ...UBUNTU.filter((k) => k.archs.includes(arch)).map((k) => ({
      distro: 'ubuntu-jammy',
      uname: ubuntuNames(kernels[arch], k).uname,
      arch,
      family: 'deb',
      toolchain: 'debian-bookworm',
    })),
    ...RELEASES.filter((r) => r.archs.includes(arch) && r.build !== false).map((r) => ({
      distro: r.name,
      uname: unameIn(kernelOf(r, arch), r).uname,
      arch,
      family: 'rpm',
      toolchain: TOOLCHAIN[r.base],
    })),
  ]);

  const policy = JSON.parse(await ws.read('support-matrix.json'));
  policy.distros['ubuntu-jammy'] = { family: 'deb', distro: 'ubuntu', release: 'jammy', toolchain: 'debian-bookworm' };
  policy.distros['ubuntu-noble'] = { family: 'deb', distro: 'ubuntu', release: 'noble', toolchain: 'debian-bookworm' };
  policy.matrix = [
    ...(
      [
        ['debian-bookworm', kernels.x86_64],
        ['debian-bullseye', bullseye],
        ['debian-trixie', trixie],
      ] as const
    ).map(([distro, k]) => ({
      driver: 'kmx-echo',
      distro,
      archs: ['x86_64'],
      flavours: ['amd64'],
      kernels: [k.kernelrelease.replace(/-amd64$/, '')],
    })),
    { driver: 'kmx-echo', distro: 'ubuntu-jammy', archs: ARCHS, flavours: ['generic', 'aws'], kernels: ['6.1.0-*'] },
    { driver: 'kmx-echo', distro: 'ubuntu-noble', archs: ['x86_64'], flavours: ['generic'], kernels: ['6.1.0-58'] },
  ];
  for (const r of RELEASES) {
    // Amazon Linux 2023's two kernel streams are one distro: its default toolchain is the 6.1 stream's.
    policy.distros[r.name] ??= { family: 'rpm', distro: r.distro, release: r.release, toolchain: TOOLCHAIN[r.base] };
    policy.matrix.push({
      driver: 'kmx-echo',
      distro: r.name,
      archs: r.archs,
      flavours: ['default'],
      kernels: [r.kernels],
    });
  }
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));

  // Ubuntu: each suite's signed InRelease, then Packages (ports for arm64); a kernel is its flavour
  // package and the shared tree it pins.
  expectOk(await ws.kmatrix(['crawl', 'deb'], env), 'kmatrix crawl deb');
  for (const arch of ARCHS) {
    const list = JSON.parse(await ws.read(`kernels/ubuntu-jammy-${arch}.json`));
    assert.deepEqual(Object.keys(list), ['ubuntu']);
    for (const k of UBUNTU.filter((u) => u.archs.includes(arch))) {
      const n = ubuntuNames(kernels[arch], k);
      const entry = list.ubuntu.find((e: { kernelrelease: string }) => e.kernelrelease === n.uname);
      assert.ok(entry, `${n.uname} in the Ubuntu ${arch} list`);
      assert.deepEqual(
        entry.kmatrix.packages.map((p: { role: string; name: string }) => `${p.role} ${p.name}`),
        [`flavour linux-headers-${n.uname}`, `common ${n.common}`],
      );
      assert.equal(entry.kmatrix.image.name, `linux-image-unsigned-${n.uname}`);
    }
  }

  // RPM: each signed repomd.xml, then its primary index; every kernel-devel arrives pinned.
  const crawl = expectOk(await ws.kmatrix(['crawl', 'rpm'], env), 'kmatrix crawl rpm');
  assert.match(crawl.stderr, /repomd\.xml: signed by a key in/);
  for (const r of RELEASES) {
    for (const arch of r.archs) {
      const list = JSON.parse(await ws.read(`kernels/${r.name}-${arch}.json`));
      assert.deepEqual(Object.keys(list), [r.listKey]);
      const uname = unameIn(kernelOf(r, arch), r).uname;
      const entry = list[r.listKey].find((e: { kernelrelease: string }) => e.kernelrelease === uname);
      assert.ok(entry, `${uname} in the ${r.name} ${arch} list`);
      // Amazon Linux 2023's 6.12 stream names its packages kernel6.12-devel and kernel6.12.
      const base = `kernel${r.stream ?? ''}`;
      assert.equal(entry.kmatrix.packages[0].name, `${base}-devel`);
      assert.match(entry.kmatrix.packages[0].sha256, /^[0-9a-f]{64}$/);
      assert.equal(entry.kmatrix.image.name, r.distro === 'amazonlinux' ? base : `${base}-core`);
    }
  }

  // gen learns gcc 12 from each kernel's .config and picks the Debian toolchain that has it; an
  // arm64 kernel's host programs are arm64 binaries, run under qemu-user on this x86_64 runner.
  expectOk(await ws.kmatrix(['gen'], env), 'kmatrix gen');
  // The releases that are crawled and generated only: their targets exist, in the same layout.
  const noble = ubuntuNames(kernels.x86_64, NOBLE).uname;
  const nobleTarget = JSON.parse(await ws.read(`targets/kmx-echo/ubuntu-noble/${noble}/x86_64/target.json`));
  assert.equal(nobleTarget.kernelDir, `/usr/src/linux-headers-${noble}`);
  await rm(join(ws.dir, 'targets/kmx-echo/ubuntu-noble'), { recursive: true });
  for (const r of RELEASES.filter((x) => x.build === false)) {
    const uname = unameIn(kernelOf(r, 'x86_64'), r).uname;
    const target = JSON.parse(await ws.read(`targets/kmx-echo/${r.name}/${uname}/x86_64/target.json`));
    assert.equal(target.kernelDir, `/usr/src/kernels/${uname}`);
    await rm(join(ws.dir, 'targets/kmx-echo', r.name), { recursive: true });
  }
  const names: string[] = [];
  for (const e of expected) {
    const target = JSON.parse(await ws.read(`targets/kmx-echo/${e.distro}/${e.uname}/${e.arch}/target.json`));
    assert.equal(
      target.kernelDir,
      e.family === 'rpm' ? `/usr/src/kernels/${e.uname}` : `/usr/src/linux-headers-${e.uname}`,
    );
    assert.deepEqual(
      target.headers.map((h: { role: string }) => h.role),
      e.family === 'rpm'
        ? ['devel']
        : e.distro.startsWith('debian-')
          ? ['common', 'flavour', 'kbuild']
          : ['common', 'flavour'],
    );
    assert.equal(target.toolchain.name, e.toolchain, 'the toolchain with the gcc the kernel was built with');
    // Pinned by the archive's own signed index, not by a first download.
    assert.ok(target.headers.every((h: { pinnedBy?: string }) => h.pinnedBy === undefined));
    assert.equal(target.build.env.QEMU_LD_PREFIX, e.arch === 'aarch64' ? '/usr/aarch64-linux-gnu' : undefined);
    names.push(target.name);
  }
  await ws.commitAll('ubuntu and rpm distros');
  const tags = JSON.parse((await ws.nx(['show', 'project', names.at(-1)!, '--json'])).stdout).tags as string[];
  assert.ok(tags.includes(`family:${expected.at(-1)!.family}`), tags.join(' '));

  const projects = `--projects=${names.join(',')}`;
  const run = expectOk(
    await ws.nx(['run-many', '-t', 'build-driver,test-driver', projects, '--output-style=stream'], env),
    'nx run-many -t build-driver,test-driver',
  );
  assert.deepEqual(cacheHits(run.all), { hits: 0, total: names.length * 2 });
  for (const e of expected) {
    const ko = join(ws.dir, 'dist/targets/kmx-echo', e.distro, e.uname, e.arch, 'kmx_echo.ko');
    const { stdout: vermagic } = await execa('modinfo', ['-F', 'vermagic', ko]);
    assert.equal(vermagic.split(' ')[0], e.uname, `vermagic of ${e.distro} ${e.arch}`);
    // The kernels here are Debian's, repackaged: built by the very gcc the chosen toolchain has.
    const build = JSON.parse(await ws.read(`dist/targets/kmx-echo/${e.distro}/${e.uname}/${e.arch}/build.json`));
    assert.match(build.compiler.kernel, /\(Debian \d+\.\d+\.\d+-/, `${e.distro} ${e.arch}`);
    assert.ok(['none', 'revision'].includes(build.compiler.difference), JSON.stringify(build.compiler));
    const boot = JSON.parse(await ws.read(`dist/boot/targets/kmx-echo/${e.distro}/${e.uname}/${e.arch}/result.json`));
    assert.equal(boot.status, 'loads', `${e.distro} ${e.arch}: ${boot.message}`);
    assert.match(boot.message, new RegExp(`on ${e.uname.replace(/[.+]/g, '\\$&')}`));
  }

  const again = expectOk(await ws.nx(['run-many', '-t', 'build-driver,test-driver', projects], env), 'second run');
  assert.deepEqual(cacheHits(again.all), { hits: names.length * 2, total: names.length * 2 });

  // The report: a six-distro grid, every cell built and loading.
  const report = JSON.parse(expectOk(await ws.kmatrix(['report', '--json', '-']), 'report').stdout) as {
    cells: { distro: string; status: string; boot?: { status: string } }[];
  };
  const loading = report.cells.filter((c) => c.boot?.status === 'loads').map((c) => c.distro);
  assert.deepEqual([...new Set(loading)].sort(), [
    'almalinux-9',
    'amazonlinux-2',
    'amazonlinux-2023',
    'debian-bookworm',
    'debian-bullseye',
    'debian-trixie',
    'fedora-41',
    'ubuntu-jammy',
  ]);
  assert.equal(loading.length, names.length);

  // KMM, RPM family: the Fedora targets' kmod images, booted on their own kernels as KMM's worker
  // uses them (the Debian family's are in kmm.test.ts).
  const kmmRepository = `${process.env.KMATRIX_REGISTRY ?? '127.0.0.1:5000'}/kmm-distros-${process.pid}/kmx-echo`;
  const kmmStore = join(ws.dir, '.published-kmm');
  const kmm = expectOk(
    await ws.kmatrix(
      ['publish', '--store', kmmStore, '--kmm', kmmRepository, '--packages', 'deb,rpm', '--allow-dirty', '--partial'],
      env,
    ),
    'publish --kmm --packages deb,rpm',
  );
  assert.match(kmm.stdout, new RegExp(`packages: ${names.length} made`));
  assert.match(kmm.stdout, new RegExp(`kmm: ${names.length} images pushed`));
  for (const arch of ['x86_64', 'aarch64']) {
    const e = expected.find((x) => x.distro === 'fedora-41' && x.arch === arch)!;
    const boot = await ws.kmatrix(
      ['kmm', 'boot', `kmx-echo--fedora-41--${e.uname}--${arch}`, '--store', kmmStore],
      env,
    );
    assert.equal(boot.exitCode, 0, boot.all);
    assert.match(boot.stdout, new RegExp(`loads ✓ .* on ${e.uname.replace(/[.+]/g, '\\$&')}`));
  }

  // Installable packages of each family's format: an Ubuntu .deb, a Fedora kmod RPM, the RPM
  // installed with rpm -i in a container (Debian's rpm on the toolchain image: this machine has no
  // Fedora userland), then modinfo and depmod's result there.
  const indexed = JSON.parse(await readFile(join(kmmStore, 'index.json'), 'utf8')).targets;
  const jammyAmd64 = expected.find((x) => x.distro === 'ubuntu-jammy' && x.arch === 'x86_64')!;
  assert.equal(
    indexed[`kmx-echo--ubuntu-jammy--${jammyAmd64.uname}--x86_64`].packages[0].name,
    `kmx-echo-modules-${jammyAmd64.uname}`,
  );
  const f41 = expected.find((x) => x.distro === 'fedora-41' && x.arch === 'x86_64')!;
  const fedoraEntry = indexed[`kmx-echo--fedora-41--${f41.uname}--x86_64`];
  const [kmod] = fedoraEntry.packages;
  assert.deepEqual([kmod.format, kmod.name], ['rpm', `kmod-kmx-echo-${f41.uname}`]);
  const rpmInstalled = await execa(
    'docker',
    [
      'run',
      '--rm',
      '--network',
      'host',
      '-v',
      `${kmmStore}:/store:ro`,
      fedoraEntry.inputs.toolchain.image,
      'sh',
      '-c',
      `apt-get update -qq && apt-get install -y -qq --no-install-recommends rpm > /dev/null 2>&1 || exit 9
       rpm -i /store/${kmod.key} 2>&1 | sed -n 's/^[[:space:]]*\\([^ ]*\\) is needed by .*/needs \\1/p'
       rpm -i --nodeps /store/${kmod.key} && rpm -q ${kmod.name}
       modinfo -F vermagic /lib/modules/${f41.uname}/updates/kmx_echo.ko
       grep -c '^updates/kmx_echo.ko:' /lib/modules/${f41.uname}/modules.dep`,
    ],
    { reject: false, all: true },
  );
  assert.equal(rpmInstalled.exitCode, 0, rpmInstalled.all);
  const [needs, installedAs, vermagic, depmodded] = rpmInstalled.stdout.trim().split('\n');
  // The only dependency: the scriptlets' shell, which no Debian rpm database lists.
  assert.equal(needs, 'needs /bin/sh', rpmInstalled.all);
  assert.equal(installedAs, `${kmod.name}-0-${fedoraEntry.buildId.slice(0, 12)}.x86_64`);
  assert.equal(vermagic?.split(' ')[0], f41.uname);
  assert.equal(depmodded, '1', 'depmod ran in %post');

  // On demand, for each family: a published Ubuntu module is a lookup; a Fedora kernel yesterday's
  // crawl did not list is crawled from Fedora's repositories, generated and served.
  const fedora41 = expected.find((e) => e.distro === 'fedora-41' && e.arch === 'x86_64')!;
  await ws.write('kernels/fedora-41-x86_64.json', JSON.stringify({ fedora: [] }));
  await rm(join(ws.dir, 'targets/kmx-echo/fedora-41', fedora41.uname), { recursive: true });
  await rm(join(ws.dir, 'dist/targets/kmx-echo/fedora-41', fedora41.uname), { recursive: true });
  await ws.commitAll('a crawl without the Fedora kernel');
  const published = join(root, 'published');
  expectOk(await ws.kmatrix(['publish', '--store', published], env), 'publish');
  const service = await startRequestService(ws, ['--port', '0', '--store', published], {
    ...env,
    KMATRIX_REQUEST_TOKEN: 'tok-0123456789abcdef',
  });
  t.after(() => service.stop());
  const ask = async (e: { distro: string; uname: string; arch: string }) => {
    const r = await fetch(`${service.base}/v1/modules/${e.distro}/${e.uname}/${e.arch}`, {
      headers: { authorization: 'Bearer tok-0123456789abcdef' },
    });
    return { status: r.status, body: (await r.json()) as { source: string; modules: { target: string }[] } };
  };
  const ubuntu = await ask(expected.find((e) => e.distro === 'ubuntu-jammy')!);
  assert.equal(ubuntu.status, 200, JSON.stringify(ubuntu.body));
  assert.equal(ubuntu.body.source, 'published');
  const unseen = await ask(fedora41);
  assert.equal(unseen.status, 200, JSON.stringify(unseen.body));
  assert.match(service.log(), /not in the kernel lists; crawling fedora 41 x86_64/);
  assert.deepEqual(
    unseen.body.modules.map((m) => m.target),
    [`kmx-echo--fedora-41--${fedora41.uname}--x86_64`],
  );
  await service.stop();

  // The same mirrors checked against a keyring that lacks their key: each crawl refuses and writes nothing.
  const stranger = await archiveKey(root, 'stranger');
  const fedora = await ws.read('kernels/fedora-41-x86_64.json');
  const foreign = await ws.kmatrix(['crawl', 'rpm', '--release', '41', '--distro', 'fedora', '--arch', 'x86_64'], {
    ...env,
    KMATRIX_FEDORA_KEYRING: stranger.keyring,
  });
  assert.notEqual(foreign.exitCode, 0);
  assert.match(foreign.all, /repomd\.xml has no valid signature by a key in .*stranger\.gpg/);
  assert.equal(await ws.read('kernels/fedora-41-x86_64.json'), fedora);
  const jammy = await ws.read('kernels/ubuntu-jammy-x86_64.json');
  const forged = await ws.kmatrix(['crawl', 'deb', '--release', 'jammy', '--distro', 'ubuntu', '--arch', 'x86_64'], {
    ...env,
    KMATRIX_UBUNTU_KEYRING: stranger.keyring,
  });
  assert.notEqual(forged.exitCode, 0);
  assert.match(forged.all, /jammy\/InRelease has no valid signature by a key in .*stranger\.gpg/);
  assert.equal(await ws.read('kernels/ubuntu-jammy-x86_64.json'), jammy);
});
