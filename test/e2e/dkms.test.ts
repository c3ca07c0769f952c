/**
 * Any driver, including DKMS trees: two real -dkms packages from Debian's archive (one module,
 * four modules), imported, evaluated by bash in the toolchain container, built for a real
 * kernel; and a tree whose BUILD_EXCLUSIVE_KERNEL leaves a kernel out is skipped with the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { detectMirrors } from '../../tools/kmatrix/crawl/mirror.ts';
import { parseStanzas } from '../../tools/kmatrix/crawl/deb822.ts';
import { fetchBytes } from '../../tools/kmatrix/net/fetch.ts';
import { createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';

/** A package of bookworm's binary-all index, fetched and checked against the index's SHA256. */
async function debianPackage(name: string, dest: string): Promise<string> {
  const { archive } = await detectMirrors();
  const index = (await execa('xz', ['-dc'], { input: await fetchBytes(`${archive}/dists/bookworm/main/binary-all/Packages.xz`, { stage: 'crawl' }), encoding: 'utf8', maxBuffer: 1 << 28 })).stdout;
  const stanza = parseStanzas(index, (first) => first === `Package: ${name}`).find((s) => s.Package === name);
  assert.ok(stanza?.Filename, `${name} is in bookworm`);
  const bytes = await fetchBytes(`${archive}/${stanza.Filename}`, { stage: 'crawl' });
  assert.equal(createHash('sha256').update(bytes).digest('hex'), stanza.SHA256);
  const file = join(dest, `${name}.deb`);
  await writeFile(file, bytes);
  return file;
}

test('DKMS drivers from Debian are imported and built; an excluded kernel is skipped with the reason', { timeout: 20 * 60_000 }, async (t) => {
  const ws = await createWorkspace('kmatrix-dkms-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const v4l2 = await debianPackage('v4l2loopback-dkms', ws.dir);
  const jool = await debianPackage('jool-dkms', ws.dir);

  const one = expectOk(await ws.kmatrix(['driver', 'import', v4l2]), 'import v4l2loopback-dkms');
  assert.match(one.all, /imported v4l2loopback as drivers\/v4l2loopback: modules v4l2loopback/);
  const three = expectOk(await ws.kmatrix(['driver', 'import', jool, '--name', 'jool']), 'import jool-dkms');
  assert.match(three.all, /modules jool_common, jool, jool_siit/);

  // A small DKMS tree of our own that only supports 5.x kernels.
  await ws.write('legacy/dkms.conf', 'PACKAGE_NAME="legacy"\nPACKAGE_VERSION="1"\nBUILD_EXCLUSIVE_KERNEL="^5\\\\."\nBUILT_MODULE_NAME[0]="legacy"\n');
  await ws.write('legacy/Kbuild', 'obj-m := legacy.o\n');
  await ws.write('legacy/legacy.c', '#include <linux/module.h>\nMODULE_LICENSE("GPL");\n');
  expectOk(await ws.kmatrix(['driver', 'import', join(ws.dir, 'legacy')]), 'import legacy');

  const policy = JSON.parse(await ws.read('support-matrix.json'));
  assert.deepEqual(policy.drivers.jool, { path: 'drivers/jool', modules: ['jool_common', 'jool', 'jool_siit'], dkms: true });
  const list = JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json')).debian as { kmatrix: { abi: string; flavour: string } }[];
  const newest = [...new Set(list.filter((e) => e.kmatrix.flavour === 'amd64' && e.kmatrix.abi.startsWith('6.1.0-')).map((e) => e.kmatrix.abi))].at(-1)!;
  const rule = { distro: 'debian-bookworm', archs: ['x86_64'], flavours: ['amd64'], kernels: [newest] };
  policy.matrix = ['v4l2loopback', 'jool', 'legacy'].map((driver) => ({ driver, ...rule }));
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));
  expectOk(await ws.kmatrix(['gen']), 'gen');
  await ws.commitAll('three DKMS drivers');

  const run = await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']);
  const modinfo = async (driver: string, abi: string, m: string) => {
    const ko = join(ws.dir, 'dist/targets', driver, 'debian-bookworm', `${abi}-amd64`, 'x86_64', `${m}.ko`);
    assert.ok(existsSync(ko), `${driver} ${abi}: no ${m}.ko\n${run.all.slice(-4000)}`);
    return (await execa('modinfo', ['-F', 'vermagic', ko])).stdout.split(' ')[0];
  };
  assert.equal(await modinfo('v4l2loopback', newest, 'v4l2loopback'), `${newest}-amd64`);
  for (const m of ['jool_common', 'jool', 'jool_siit']) assert.equal(await modinfo('jool', newest, m), `${newest}-amd64`, `${m}.ko`);
  const esc = (x: string) => x.replace(/[.+]/g, '\\$&');
  assert.match(run.all, new RegExp(`legacy--debian-bookworm--${esc(newest)}-amd64--x86_64: BUILD_EXCLUSIVE_KERNEL="\\^5\\\\\\." does not match ${esc(newest)}-amd64`));
  assert.match(run.all, /debian-bookworm x86_64 +2 +0 +0 +1/);
  assert.equal(run.exitCode, 0, 'a skipped kernel is not a failure');
});
