/**
 * kernel-crawler lists as the kernel source: both formats parse, Debian entries become real
 * targets (real `uname -r`, this machine's mirror, SHA256 resolved once and recorded), everything
 * else is reported, and what is generated builds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace, expectOk, repoRoot } from '../support/workspace.ts';

const lists = ['x86_64-sample.json', 'aarch64-sample.json', 'current-x86_64.json', 'current-aarch64.json'].flatMap(
  (f) => ['--kernels', `test/fixtures/kernel-crawler/${f}`],
);

test('a user generates and builds the matrix from kernel-crawler output', { timeout: 20 * 60_000 }, async (t) => {
  const ws = await createWorkspace('kmatrix-crawler-');
  t.after(() => ws.remove());
  await ws.write(
    'support-matrix.json',
    (await readFile(join(repoRoot, 'test/fixtures/policy-crawler.json'), 'utf8')).replace('../../', './'),
  );
  expectOk(await ws.kmatrix(['toolchain', 'build', 'debian-bookworm']), 'toolchain build');
  // No crawled index to pin by: every package is downloaded once and trusted on first download.
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });

  // --verbose: every skipped entry on its own line, with its own reason.
  const gen = expectOk(await ws.kmatrix(['gen', ...lists, '--verbose']), 'kmatrix gen');
  // Built from the current-format entries, named by the real `uname -r`, not the crawler's label.
  assert.match(gen.all, /^\+ kmx-echo--debian-bookworm--6\.1\.0-47-amd64--x86_64$/m);
  assert.match(gen.all, /^\+ kmx-echo--debian-bookworm--6\.1\.0-47-arm64--aarch64$/m);
  // The driverkit entry's kbuild (a bullseye backport) is gone from every mirror: reported, not built.
  assert.match(
    gen.all,
    /skipped kmx-echo--debian-bookworm--6\.1\.0-47-rt-arm64--aarch64: no mirror serves linux-kbuild-6\.1 6\.1\.94-1~bpo11\+1/,
  );
  // 2022 bullseye kernels: parsed, selected, and reported as no longer served.
  assert.match(gen.all, /skipped kmx-echo--debian-bullseye--5\.10\.0-16-amd64--x86_64: no mirror serves/);
  assert.match(gen.all, /skipped Minikube 4\.19\.202: unbuildable yet: .*kernelconfigdata/);
  assert.match(gen.all, /skipped flatcar 3975\.2\.0: unbuildable yet/);
  // RPM distros are read, and the policy names none of them: each distro's kernels, counted once.
  assert.match(
    gen.all,
    /^skipped amazonlinux-2 4\.14\.173-137\.229\.amzn2\.x86_64: the policy has no distro amazonlinux-2 /m,
  );
  assert.match(gen.all, /^skipped ol-7 3\.10\.0-1062\.1\.1\.el7\.x86_64: the policy has no distro ol-7 /m);
  assert.match(
    gen.all,
    /skipped amazonlinux-2023 6\.1\.102-108\.177\.amzn2023\.x86_64: the policy has no distro amazonlinux-2023 /,
  );
  assert.match(gen.all, /skipped 5 amazonlinux kernels: no distro family of kmatrix reads amazonlinux kernels /);
  assert.match(gen.all, /skipped Debian 5\.19\.11-1-amd64: cannot tell which Debian release/);
  const perDistro = gen.all.match(/^skipped per distro: (.*)$/m)?.[1] ?? '';
  assert.match(perDistro, /\bdebian-bookworm 1\b/);
  assert.match(perDistro, /\bol-7 5\b/);
  assert.match(perDistro, /\bamazonlinux-2 10\b/);
  assert.match(gen.all, /^2 targets: 2 added/m);
  // The crawler does not say which gcc built a kernel: gen reads it from the headers' .config.
  assert.match(gen.all, /^compiler of 6\.1\.0-47-amd64 \(x86_64\) from its headers: gcc-12$/m);

  const amd64 = JSON.parse(await ws.read('targets/kmx-echo/debian-bookworm/6.1.0-47-amd64/x86_64/target.json'));
  assert.equal(amd64.kernel.listedAs, '6.1.170-3-amd64');
  assert.equal(amd64.kernelDir, '/usr/src/linux-headers-6.1.0-47-amd64');
  assert.equal(amd64.kernel.gcc, '12');
  assert.equal(amd64.toolchain.gcc, '12');
  assert.deepEqual(
    amd64.headers.map((h: { name: string }) => h.name),
    ['linux-headers-6.1.0-47-common', 'linux-headers-6.1.0-47-amd64', 'linux-kbuild-6.1'],
  );
  // The crawler gives no digests: each was trusted on first download, and the target says so.
  assert.deepEqual(
    amd64.headers.map((h: { pinnedBy?: string }) => h.pinnedBy),
    ['first-download', 'first-download', 'first-download'],
  );
  for (const h of amd64.headers) {
    assert.match(h.sha256, /^[0-9a-f]{64}$/);
    assert.doesNotMatch(JSON.stringify(h), /MIRROR/, "placeholders are mapped to this machine's mirror");
  }
  // The digest we resolved by downloading equals the one Debian's own index states.
  const index = JSON.parse(await readFile(join(repoRoot, 'kernels/debian-bookworm-aarch64.json'), 'utf8'));
  const indexed = index.debian.flatMap(
    (e: { kmatrix: { packages: { name: string; version: string; sha256: string }[] } }) => e.kmatrix.packages,
  );
  const arm64 = JSON.parse(await ws.read('targets/kmx-echo/debian-bookworm/6.1.0-47-arm64/aarch64/target.json'));
  const flavour = arm64.headers.find((h: { role: string }) => h.role === 'flavour');
  assert.equal(
    flavour.sha256,
    indexed.find((p: { name: string; version: string }) => p.name === flavour.name && p.version === flavour.version)
      ?.sha256,
  );
  assert.deepEqual(arm64.build.makeArgs, ['ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-']);

  // Resolved once: regenerating downloads none of the targets' packages again (only the packages of
  // the skipped kernels are retried, in case a mirror serves them now) and changes nothing.
  const emptyStore = await mkdtemp(join(tmpdir(), 'kmatrix-empty-store-'));
  t.after(() => rm(emptyStore, { recursive: true, force: true }));
  const again = expectOk(await ws.kmatrix(['gen', ...lists], { KMATRIX_STORE: emptyStore }), 'second gen');
  assert.match(again.all, /^2 targets: 0 added, 0 changed, 0 removed, 2 unchanged$/m);
  assert.doesNotMatch(again.all, /from its headers/, 'the compiler recorded in target.json is reused');
  const downloaded: string[] = await readdir(join(emptyStore, 'debs')).catch(() => []);
  for (const h of [...amd64.headers, ...arm64.headers]) {
    assert.ok(!downloaded.includes(`${h.sha256}.deb`), `${h.name} was downloaded again`);
    assert.doesNotMatch(
      again.all,
      new RegExp(`resolving the SHA256 of ${h.name} ${h.version.replace(/[.+~]/g, '\\$&')}$`, 'm'),
    );
  }

  // With Debian's index crawled (kernels/, as `kmatrix crawl deb` writes it), the same files are
  // pinned by what the signed index says: the same digests, now without "first-download".
  await cp(join(repoRoot, 'kernels'), join(ws.dir, 'kernels'), { recursive: true });
  const byIndex = expectOk(await ws.kmatrix(['gen', ...lists]), 'gen with a crawled index');
  assert.match(byIndex.all, /^\d+ packages pinned by the archive indexes in kernels\/ \(no download\)$/m);
  const indexedAmd64 = JSON.parse(await ws.read('targets/kmx-echo/debian-bookworm/6.1.0-47-amd64/x86_64/target.json'));
  for (const h of indexedAmd64.headers.filter((x: { role: string }) => x.role !== 'kbuild')) {
    assert.equal(h.pinnedBy, undefined, `${h.name} is pinned by the index`);
    assert.equal(h.sha256, amd64.headers.find((x: { name: string }) => x.name === h.name).sha256);
  }

  await ws.commitAll('targets from kernel-crawler');
  expectOk(await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']), 'nx run-many');
  for (const [release, arch] of [
    ['6.1.0-47-amd64', 'x86_64'],
    ['6.1.0-47-arm64', 'aarch64'],
  ] as const) {
    const ko = join(ws.dir, 'dist/targets/kmx-echo/debian-bookworm', release, arch, 'kmx_echo.ko');
    assert.equal((await execa('modinfo', ['-F', 'vermagic', ko])).stdout.split(' ')[0], release);
  }
});
