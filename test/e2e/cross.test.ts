/**
 * aarch64 modules cross-compiled on this x86_64 runner: arm64 header packages, the amd64 kbuild
 * host programs, ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-; the result is an ARM aarch64 ELF
 * whose vermagic is the arm64 kernel's, built with the gcc the kernel was built with (strict).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { join } from 'node:path';
import { createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';

test('a user cross-builds the arm64 matrix on an x86_64 runner', { timeout: 15 * 60_000 }, async (t) => {
  const ws = await createWorkspace('kmatrix-cross-');
  t.after(() => ws.remove());
  await preparePipeline(ws, 'test/fixtures/policy-cross-aarch64.json');
  const names: string[] = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  );
  assert.equal(names.length, 2, names.join(', '));
  for (const name of names) {
    const target = JSON.parse(await ws.read(join('targets', ...name.split('--'), 'target.json')));
    assert.deepEqual(target.build.makeArgs, ['ARCH=arm64', 'CROSS_COMPILE=aarch64-linux-gnu-']);
    assert.deepEqual(
      target.headers.filter((h: { role: string }) => h.role === 'kbuild').map((h: { hostArch: string }) => h.hostArch),
      ['x86_64'],
    );
  }
  const run = expectOk(await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']), 'nx run-many');
  assert.doesNotMatch(run.all, /warning: the kernel was built with/);
  for (const name of names) {
    const [driver, distro, release, arch] = name.split('--') as [string, string, string, string];
    const ko = join(ws.dir, 'dist', 'targets', driver, distro, release, arch, 'kmx_echo.ko');
    assert.match((await execa('file', ['-b', ko])).stdout, /ELF 64-bit LSB relocatable, ARM aarch64/);
    assert.equal((await execa('modinfo', ['-F', 'vermagic', ko])).stdout.split(' ')[0], release);
  }
});
