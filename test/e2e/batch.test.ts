/**
 * `nx run-many -t build-driver --batch`: one process builds every target, a target that fails
 * does not stop the others, the summary is the same, and what it caches is exactly what a
 * per-task run would have (the next plain run is all cache hits, same modules).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  cacheHits,
  createWorkspace,
  expectOk,
  preparePipeline,
  type Workspace,
  writeTarget,
} from '../support/workspace.ts';

const koSha = async (ws: Workspace, name: string) =>
  createHash('sha256')
    .update(await readFile(join(ws.dir, 'dist/targets', ...name.split('--'), 'kmx_echo.ko')))
    .digest('hex');

test('a batch run builds every target in one process, isolates a failure and caches like a per-task run', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-batch-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const all: string[] = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  );
  assert.ok(all.length >= 3);

  // One target's header digest is wrong: it fails as infrastructure, the rest are built.
  const bad = all.find((n) => n.includes('--6.1.0-'))!;
  const badFile = join('targets', ...bad.split('--'), 'target.json');
  const good = await ws.read(badFile);
  const tampered = JSON.parse(good);
  tampered.headers.find((h: { role: string }) => h.role === 'flavour').sha256 = '0'.repeat(64);
  await writeTarget(ws, badFile, tampered);
  // One parallelism knob: Nx's --parallel is how many builds the batch runs at once.
  const batch = await ws.nx(['run-many', '-t', 'build-driver', '--batch', '--parallel=2', '--output-style=static']);
  assert.notEqual(batch.exitCode, 0);
  assert.match(batch.all, new RegExp(`kmatrix: ${all.length} builds in one process, 2 at a time \\(nx --parallel\\)`));
  assert.match(
    batch.all,
    new RegExp(
      `kmatrix: build-driver summary, ${all.length} targets\n  distro × arch +built  cached  failed  skipped\n  debian-bookworm x86_64 +${all.length - 1} +0 +1 +0`,
    ),
  );
  assert.match(
    batch.all,
    new RegExp(`^    ${bad.replace(/[.+]/g, '\\$&')}: infrastructure \\(headers\\): SHA256 mismatch`, 'm'),
  );
  const built = new Map<string, string>();
  for (const n of all.filter((x) => x !== bad)) built.set(n, await koSha(ws, n));

  // The next plain (per-task) run takes every batch-built target from the cache, bytes unchanged,
  // and builds only the repaired one.
  await ws.write(badFile, good);
  const after = expectOk(
    await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']),
    'per-task run after the batch',
  );
  assert.deepEqual(cacheHits(after.all), { hits: all.length - 1, total: all.length });
  for (const [n, sha] of built) assert.equal(await koSha(ws, n), sha, `${n} restored byte for byte`);
});
