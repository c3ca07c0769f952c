/**
 * kernel-devel packages come as .rpm: real packages built by rpmbuild with each payload
 * compression rpm uses (gzip, xz, zstd) are unpacked by our own reader into the header store,
 * file for file, mode for mode, link for link — and a damaged one is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { extractRpm } from '../../tools/kmatrix/packages/rpm.ts';
import { KmatrixError } from '../../tools/kmatrix/core/errors.ts';
import { startServer } from '../support/http.ts';

const RELEASE = '6.1.0-kmx.fc40.x86_64';

/** A kernel-devel-like package: headers, an executable host tool, a symlink, a hard link. */
async function buildRpm(top: string, payload: string): Promise<string> {
  const src = join(top, 'src');
  await mkdir(join(src, 'include/linux'), { recursive: true });
  await mkdir(join(src, 'scripts/basic'), { recursive: true });
  await writeFile(join(src, 'Makefile'), `KERNELRELEASE = ${RELEASE}\n`);
  await writeFile(join(src, 'include/linux/kmx.h'), '#define KMX 1\n'.repeat(2000));
  await writeFile(join(src, 'scripts/basic/fixdep'), '#!/bin/sh\nexit 0\n');
  await chmod(join(src, 'scripts/basic/fixdep'), 0o755);
  await mkdir(join(top, 'SPECS'), { recursive: true });
  const spec = `Name: kernel-devel
Version: 6.1.0
Release: kmx
Summary: test headers
License: GPL-2.0
BuildArch: x86_64
%define _binary_payload ${payload}
%define __os_install_post %{nil}
%define debug_package %{nil}
%description
test
%install
mkdir -p %{buildroot}/usr/src/kernels/${RELEASE}
cp -a ${src}/. %{buildroot}/usr/src/kernels/${RELEASE}/
ln -s ../../../usr/src/kernels/${RELEASE}/include %{buildroot}/usr/src/kernels/${RELEASE}/include-link
ln %{buildroot}/usr/src/kernels/${RELEASE}/Makefile %{buildroot}/usr/src/kernels/${RELEASE}/Makefile.hardlink
%files
/usr/src/kernels/${RELEASE}
`;
  await writeFile(join(top, 'SPECS/k.spec'), spec);
  await execa('rpmbuild', ['-bb', '--define', `_topdir ${top}`, join(top, 'SPECS/k.spec')]);
  const dir = join(top, 'RPMS/x86_64');
  return join(dir, (await readdir(dir))[0]!);
}

test('rpm packages with gzip, xz and zstd payloads unpack exactly, without rpm2cpio', {
  timeout: 180_000,
}, async (t) => {
  for (const payload of ['w9.gzdio', 'w6.xzdio', 'w19.zstdio']) {
    const top = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-'));
    t.after(() => rm(top, { recursive: true, force: true }));
    const rpm = await buildRpm(top, payload);
    const out = join(top, 'out');
    await mkdir(out);
    await extractRpm(rpm, out);
    const root = join(out, 'usr/src/kernels', RELEASE);
    assert.equal(await readFile(join(root, 'Makefile'), 'utf8'), `KERNELRELEASE = ${RELEASE}\n`, payload);
    assert.equal(await readFile(join(root, 'include/linux/kmx.h'), 'utf8'), '#define KMX 1\n'.repeat(2000));
    assert.equal((await lstat(join(root, 'scripts/basic/fixdep'))).mode & 0o777, 0o755);
    assert.equal(await readlink(join(root, 'include-link')), `../../../usr/src/kernels/${RELEASE}/include`);
    const [a, b] = [await lstat(join(root, 'Makefile')), await lstat(join(root, 'Makefile.hardlink'))];
    assert.equal(a.ino, b.ino, 'the hard link is a hard link');
    // Cross-check against rpm's own view of the package: the same file list.
    const listed = (await execa('rpm', ['-qlp', rpm])).stdout.split('\n').filter(Boolean).sort();
    const ours = (await readdir(out, { recursive: true }))
      .map((p) => `/${p}`)
      .filter((p) => p.startsWith(`/usr/src/kernels/${RELEASE}`))
      .sort();
    assert.deepEqual(ours, listed);
  }
});

test('the header store unpacks an .rpm like a .deb, and refuses a damaged one', { timeout: 180_000 }, async (t) => {
  const top = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-store-'));
  t.after(() => rm(top, { recursive: true, force: true }));
  const rpm = await readFile(await buildRpm(top, 'w19.zstdio'));
  const damaged = Buffer.from(rpm.subarray(0, rpm.length - 4000));
  const server = await startServer((req, res) => res.end(req.url === '/good.rpm' ? rpm : damaged));
  t.after(() => server.close());
  const store = new HeaderStore(join(top, 'store'));
  const pkg = (file: string, bytes: Buffer) => ({
    role: 'flavour' as const,
    name: 'kernel-devel',
    version: '6.1.0-kmx',
    url: `${server.url}/${file}`,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
  });

  const tree = await store.tree(pkg('good.rpm', rpm));
  assert.equal(
    await readFile(join(tree, 'usr/src/kernels', RELEASE, 'Makefile'), 'utf8'),
    `KERNELRELEASE = ${RELEASE}\n`,
  );
  assert.equal(
    (await lstat(join(tree, 'usr/src/kernels', RELEASE, 'Makefile'))).mode & 0o222,
    0,
    'store trees are read-only',
  );

  await assert.rejects(
    store.tree(pkg('damaged.rpm', damaged)),
    (e: unknown) =>
      e instanceof KmatrixError && /cannot unpack kernel-devel: .*(truncated|zstd|decompress|end)/i.test(e.message),
  );
  assert.deepEqual(
    (await readdir(join(top, 'store/trees'))).filter((n) => !n.startsWith(pkg('good.rpm', rpm).sha256)),
    [],
    'no half-unpacked tree',
  );
});
