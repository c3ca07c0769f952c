/**
 * Installable packages of a target's modules, made by the real tools (dpkg-deb, rpmbuild): named
 * as DKMS and akmods name them, the modules under /lib/modules/<uname -r>/updates/ with their own
 * names, depmod in the scripts, and the same bytes every time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { debPackage } from '../../tools/kmatrix/publish/package-deb.ts';
import { rpmPackage } from '../../tools/kmatrix/publish/package-rpm.ts';
import { parseFormats } from '../../tools/kmatrix/publish/packages.ts';
import { latestSums } from '../../tools/kmatrix/publish/latest.ts';
import { KmatrixError } from '../../tools/kmatrix/core/errors.ts';

const modules = new Map([
  ['kmx_echo.ko', Buffer.from('a module, signature appended')],
  ['kmx_other.ko', Buffer.from('another module')],
]);

test('a .deb like dkms mkbmdeb: its name, its files, depmod in postinst and postrm, the same bytes twice', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-deb-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const input = {
    driver: 'kmx-echo',
    kernelrelease: '6.1.0-57-arm64',
    arch: 'aarch64' as const,
    build: 'abcdef012345',
    modules,
  };
  const a = await debPackage(input);
  await new Promise((r) => setTimeout(r, 1100)); // another second on the clock: it must not show
  const b = await debPackage(input);
  assert.ok(a.body.equals(b.body), 'reproducible');
  assert.equal(a.file, 'kmx-echo-modules-6.1.0-57-arm64_0+abcdef012345_arm64.deb');
  const file = join(dir, a.file);
  await writeFile(file, a.body);
  const fields = (await execa('dpkg-deb', ['-f', file, 'Package', 'Version', 'Architecture'])).stdout;
  assert.equal(fields, 'Package: kmx-echo-modules-6.1.0-57-arm64\nVersion: 0+abcdef012345\nArchitecture: arm64');
  const listed = (await execa('dpkg-deb', ['-c', file], { env: { TZ: 'UTC' } })).stdout;
  assert.match(
    listed,
    /^-rw-r--r-- root\/root +\d+ 2023-11-14 22:13 \.\/lib\/modules\/6\.1\.0-57-arm64\/updates\/kmx_echo\.ko$/m,
  );
  assert.match(listed, /\/updates\/kmx_other\.ko$/m);
  await execa('dpkg-deb', ['-e', file, join(dir, 'control')]);
  assert.match(await execa('cat', [join(dir, 'control/postinst')]).then((r) => r.stdout), /depmod -a 6\.1\.0-57-arm64/);
  assert.match(
    await execa('cat', [join(dir, 'control/postrm')]).then((r) => r.stdout),
    /depmod -a 6\.1\.0-57-arm64 \|\| true/,
  );
  await assert.rejects(
    debPackage({ ...input, kernelrelease: '6.11.4-301.fc41.x86_64' }),
    /cannot be a Debian package name/,
  );
});

test('an .rpm like akmods: kmod-<driver>-<uname -r>, its files, depmod in %post and %postun, the same bytes twice', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const input = {
    driver: 'kmx-echo',
    kernelrelease: '6.11.4-301.fc41.aarch64',
    arch: 'aarch64' as const,
    build: 'abcdef012345',
    modules,
  };
  const a = await rpmPackage(input);
  await new Promise((r) => setTimeout(r, 1100));
  const b = await rpmPackage(input);
  assert.ok(a.body.equals(b.body), 'reproducible');
  assert.equal(a.file, 'kmod-kmx-echo-6.11.4-301.fc41.aarch64-0-abcdef012345.aarch64.rpm');
  const file = join(dir, a.file);
  await writeFile(file, a.body);
  const info = (await execa('rpm', ['-qp', '--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{BUILDHOST}\\n', file]))
    .stdout;
  assert.equal(info, 'kmod-kmx-echo-6.11.4-301.fc41.aarch64 0 abcdef012345 aarch64 kmatrix');
  const listed = (await execa('rpm', ['-qlp', '--scripts', file])).stdout;
  assert.match(listed, /postinstall scriptlet \(using \/bin\/sh\):\ndepmod -a 6\.11\.4-301\.fc41\.aarch64\n/);
  assert.match(listed, /postuninstall scriptlet \(using \/bin\/sh\):\ndepmod -a 6\.11\.4-301\.fc41\.aarch64 \|\| :\n/);
  assert.match(listed, /^\/lib\/modules\/6\.11\.4-301\.fc41\.aarch64\/updates\/kmx_echo\.ko$/m);
});

test('--packages takes deb and rpm; anything else is a usage error', () => {
  assert.deepEqual(parseFormats('deb,rpm,deb'), ['deb', 'rpm']);
  assert.throws(
    () => parseFormats('deb,apk'),
    (e: unknown) => e instanceof KmatrixError && e.stage === 'usage' && /unknown format "apk"/.test(e.message),
  );
});

test('latest.sha256sums is what sha256sum -c reads: one "<sha256>  <key>" line per published file', () => {
  const f = (key: string) => ({ key, sha256: key.length.toString(16).padStart(64, '0'), size: 1 });
  const text = latestSums({
    modules: [{ file: 'a.ko', vermagic: 'v', ...f('m/a.ko'), signed: { ...f('m/a.signed.ko'), keyId: 'k' } }],
    packages: [{ format: 'deb', name: 'a-modules-k', file: 'a.deb', ...f('m/a.deb') }],
    provenance: f('m/provenance.unsigned.dsse.json'),
  } as never);
  assert.deepEqual(
    text
      .trimEnd()
      .split('\n')
      .map((l) => l.split('  ')[1]),
    ['m/a.ko', 'm/a.signed.ko', 'm/a.deb', 'm/provenance.unsigned.dsse.json'],
  );
  assert.match(text, /^[0-9a-f]{64} {2}m\/a\.ko$/m);
});
