/**
 * `kmatrix cache explain` and `reproduce --verify` say why a target misses: when the toolchain image
 * changed, which of its packages changed version (from the locks' package lists).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareInputs } from '../../tools/kmatrix/cache/explain.ts';
import type { BuildRecord } from '../../tools/kmatrix/model/build-record.ts';

const inputs = (digest: string, packages: Record<string, string>): BuildRecord['inputs'] => ({
  targetJsonSha256: '',
  toolchain: { name: 'debian-bookworm', image: `127.0.0.1:5000/kmatrix/debian-bookworm@sha256:${digest}`, packages },
  headers: [{ name: 'linux-headers-6.1.0-57-amd64', version: '6.1.192-3', sha256: 'a'.repeat(64) }],
  driverSources: { 'kmx_echo_main.c': 'b'.repeat(64) },
  make: ['make', 'modules'],
  env: {},
});

test('a re-pinned toolchain is explained package by package', () => {
  const before = inputs('1'.repeat(64), { make: '4.3-4.1', 'gcc-12': '12.2.0-14+deb12u1', bc: '1.07.1-3+b1' });
  const after = inputs('2'.repeat(64), { make: '4.3-4.2', 'gcc-12': '12.2.0-14+deb12u1', dwarves: '1.24-4.1' });
  assert.deepEqual(
    compareInputs(before, after).map((d) => `${d.input}: ${d.detail}`),
    [
      `toolchain: image sha256:${'1'.repeat(64)} → sha256:${'2'.repeat(64)}`,
      'toolchain: package bc: 1.07.1-3+b1 → (no longer installed)',
      'toolchain: package dwarves: (not in the lock) → 1.24-4.1',
      'toolchain: package make: 4.3-4.1 → 4.3-4.2',
    ],
  );
});

test('the same image in another registry is no difference', () => {
  const here = inputs('1'.repeat(64), { make: '4.3-4.1' });
  const there = {
    ...here,
    toolchain: { ...here.toolchain, image: `10.0.0.5:5000/kmatrix/debian-bookworm@sha256:${'1'.repeat(64)}` },
  };
  assert.deepEqual(compareInputs(here, there), []);
});
