/**
 * The breakage window, from the report's cells: per driver × family × arch, the kernel range that
 * builds and loads, the first kernel that fails with its first error, and what fails now that the
 * last published state had published.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type BreakageWindow, breakageWindows } from '../../tools/kmatrix/report/breakage.ts';
import type { Cell } from '../../tools/kmatrix/report/data.ts';

const cell = (kernelrelease: string, status: Cell['status'], extra: Partial<Cell> = {}): Cell => ({
  target: `drv--debian-bookworm--${kernelrelease}--x86_64`,
  driver: 'drv',
  distro: 'debian-bookworm',
  family: 'deb',
  arch: 'x86_64',
  kernelrelease,
  row: kernelrelease,
  status,
  modules: [],
  ...extra,
});

test('kernels in version order: the range that works, the first failure and its error, newly failing', () => {
  const cells = [
    cell('6.12.118+deb12-amd64', 'failed', { detail: "error: implicit declaration of function 'strlcpy'" }),
    cell('6.1.0-9-amd64', 'cached', { boot: { status: 'loads', message: 'loads' } }),
    cell('6.1.0-57-amd64', 'built'),
    cell('6.12.57+deb12-amd64', 'failed', { detail: "error: implicit declaration of function 'strlcpy'" }),
    cell('6.1.0-40-amd64', 'skipped', { detail: 'BUILD_EXCLUSIVE_KERNEL' }),
    cell('6.1.0-41-amd64', 'not built'),
  ];
  const published = new Set([cells[3]!.target, cells[1]!.target]);
  assert.deepEqual(breakageWindows(cells, published), [
    {
      driver: 'drv',
      family: 'deb',
      arch: 'x86_64',
      works: { from: '6.1.0-9-amd64', to: '6.1.0-57-amd64', kernels: 2, bootTested: 1 },
      firstFailure: {
        kernelrelease: '6.12.57+deb12-amd64',
        target: 'drv--debian-bookworm--6.12.57+deb12-amd64--x86_64',
        stage: 'build',
        error: "error: implicit declaration of function 'strlcpy'",
      },
      failing: 2,
      newlyFailing: ['drv--debian-bookworm--6.12.57+deb12-amd64--x86_64'],
    },
  ]);
});

test('an old kernel failing does not hide where the driver breaks: the break is the first failure above what works', () => {
  const cells = [
    cell('5.10.0-30-amd64', 'failed', { distro: 'debian-bullseye', detail: 'too old' }),
    cell('6.1.0-9-amd64', 'built'),
    cell('6.1.0-57-amd64', 'built'),
    cell('6.12.57+deb12-amd64', 'failed', { detail: "error: implicit declaration of function 'strlcpy'" }),
    cell('6.12.118+deb12-amd64', 'built'),
  ];
  const [w] = breakageWindows(cells, new Set());
  assert.deepEqual(w?.works, { from: '6.1.0-9-amd64', to: '6.1.0-57-amd64', kernels: 2, bootTested: 0 });
  assert.equal(w?.firstFailure?.kernelrelease, '6.12.57+deb12-amd64');
  assert.equal(w?.failing, 2);
  // Only failures below what works: the lowest of them.
  const [below] = breakageWindows(cells.slice(0, 3), new Set());
  assert.equal(below?.firstFailure?.kernelrelease, '5.10.0-30-amd64');
});

test('a module that builds but does not load breaks the window at its kernel; each family and arch apart', () => {
  const cells = [
    cell('6.1.0-9-amd64', 'built', { boot: { status: 'loads', message: 'loads' } }),
    cell('6.1.0-57-amd64', 'built', { boot: { status: 'rejected', message: 'Unknown symbol strlcpy (err -2)' } }),
    cell('6.1.0-60-amd64', 'built', { boot: { status: 'gap', message: 'no image' } }),
    cell('6.11.4-301.fc41.x86_64', 'built', { distro: 'fedora-41', family: 'rpm', target: 'drv--fedora-41--x' }),
    cell('6.1.0-9-arm64', 'failed', { arch: 'aarch64', target: 'drv--debian-bookworm--6.1.0-9-arm64--aarch64' }),
  ];
  const [debArm, deb, rpm] = breakageWindows(cells, new Set()) as [BreakageWindow, BreakageWindow, BreakageWindow];
  assert.deepEqual(deb.works, { from: '6.1.0-9-amd64', to: '6.1.0-9-amd64', kernels: 1, bootTested: 1 });
  assert.deepEqual(deb.firstFailure, {
    kernelrelease: '6.1.0-57-amd64',
    target: 'drv--debian-bookworm--6.1.0-57-amd64--x86_64',
    stage: 'boot',
    error: 'rejected: Unknown symbol strlcpy (err -2)',
  });
  assert.deepEqual([debArm.arch, debArm.works, debArm.firstFailure?.error], ['aarch64', undefined, 'the build failed']);
  assert.deepEqual([rpm.family, rpm.works?.from, rpm.firstFailure], ['rpm', '6.11.4-301.fc41.x86_64', undefined]);
});
