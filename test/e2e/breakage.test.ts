/**
 * The breakage window on a real DKMS driver from Debian's archive: bookworm's v4l2loopback-dkms
 * 0.12.7 calls strlcpy(), which Linux removed in 6.8 — it builds for bookworm's 6.1 kernels and
 * breaks at 6.12. Then the maintainer moves to the timer API of Linux 6.16 (from_timer() became
 * timer_container_of()) and the published 6.1 builds break: newly failing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';
import { debianPackage } from '../support/debian-package.ts';
import type { BreakageWindow } from '../../tools/kmatrix/report/breakage.ts';
import { compareVersions } from '../../tools/kmatrix/model/version.ts';

test("a real DKMS driver's breakage window: where it builds, the first kernel that breaks and why, what broke since publishing", {
  timeout: 20 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-breakage-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  expectOk(await ws.kmatrix(['driver', 'import', await debianPackage('v4l2loopback-dkms', ws.dir)]), 'import');
  const policy = JSON.parse(await ws.read('support-matrix.json'));
  policy.matrix = [
    {
      driver: 'v4l2loopback',
      distro: 'debian-bookworm',
      archs: ['x86_64'],
      flavours: ['amd64'],
      kernels: ['6.1.0-*', '6.12.*'],
      latest: 2,
    },
  ];
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));
  expectOk(await ws.kmatrix(['gen']), 'gen');
  await ws.commitAll('v4l2loopback for bookworm 6.1 and 6.12');
  const names = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  ) as string[];
  const kernels = names.map((n) => n.split('--')[2]!);
  const k61 = kernels.filter((k) => k.startsWith('6.1.0-')).sort(compareVersions);
  const k612 = kernels.filter((k) => k.startsWith('6.12.'));
  assert.deepEqual([k61.length, k612.length], [2, 2], kernels.join(', '));

  const window = async (...args: string[]): Promise<BreakageWindow> => {
    const report = JSON.parse(expectOk(await ws.kmatrix(['report', '--json', '-', ...args]), 'report').stdout);
    assert.equal(report.windows.length, 1);
    return report.windows[0];
  };
  const run = await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']);
  assert.notEqual(run.exitCode, 0, 'the 6.12 builds fail');
  const first = await window();
  assert.deepEqual(first.works, { from: k61[0], to: k61[1], kernels: 2, bootTested: 0 });
  assert.equal(first.firstFailure?.kernelrelease, [...k612].sort(compareVersions)[0]);
  assert.equal(first.firstFailure?.stage, 'build');
  assert.match(first.firstFailure!.error, /strlcpy/);
  assert.equal(first.failing, 2);
  assert.deepEqual(first.newlyFailing, []);

  // What works is published; then the driver moves to timer_container_of() and 6.1 breaks.
  const store = join(ws.dir, '.published');
  expectOk(await ws.kmatrix(['publish', '--store', store, '--partial']), 'publish');
  const source = 'drivers/v4l2loopback/v4l2loopback.c';
  const text = await ws.read(source);
  assert.ok(text.includes('from_timer('));
  await ws.write(source, text.replaceAll('from_timer(', 'timer_container_of('));
  await ws.commitAll('use timer_container_of');
  await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']);
  const after = await window('--published', store);
  assert.equal(after.works, undefined, 'nothing builds now');
  assert.equal(after.firstFailure?.kernelrelease, k61[0]);
  assert.match(after.firstFailure!.error, /timer_container_of/);
  assert.deepEqual(
    after.newlyFailing.sort(),
    names.filter((n) => n.includes('--6.1.0-')).sort(),
    'the published 6.1 builds are newly failing',
  );
  const md = join(ws.dir, 'summary.md');
  expectOk(await ws.kmatrix(['report', '--markdown', md, '--published', store]), 'report --markdown');
  const summary = await ws.read('summary.md');
  assert.match(summary, /### Breakage windows/);
  assert.match(
    summary,
    new RegExp(
      `\\| v4l2loopback \\| deb \\| x86_64 \\| none \\| ${k61[0]!.replace(/[.+]/g, '\\$&')} \\(build\\): .*timer_container_of`,
    ),
  );
  const html = join(ws.dir, 'report.html');
  expectOk(await ws.kmatrix(['report', '--out', html, '--published', store]), 'report --out');
  assert.match(await ws.read('report.html'), /<h2>Breakage windows<\/h2>/);
});
