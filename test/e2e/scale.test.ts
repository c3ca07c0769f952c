/**
 * 5,000 targets: gen writes them deterministically (the same tree, byte for byte, from scratch),
 * and Nx sees 5,000 projects. Speed is measured by `npm run bench`, not asserted here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createWorkspace, expectOk } from '../support/workspace.ts';
import { existingTargetFiles } from '../../tools/kmatrix/gen/sync.ts';
import { syntheticKernelList, syntheticPolicy } from '../bench/synthetic.ts';

async function treeDigest(root: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of await existingTargetFiles(root)) h.update(f).update(await readFile(join(root, f)));
  return h.digest('hex');
}

test('gen writes a 5,000-target matrix deterministically and nx sees every target', {
  timeout: 10 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-scale-');
  t.after(() => ws.remove());
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  await ws.write('support-matrix.json', JSON.stringify(syntheticPolicy(), null, 2));
  await ws.write('kernels/synthetic.json', JSON.stringify(syntheticKernelList(2500)));

  const first = expectOk(await ws.kmatrix(['gen']), 'gen');
  assert.match(first.all, /^5000 targets: 5000 added, 0 changed, 0 removed, 0 unchanged$/m);
  const digest = await treeDigest(ws.dir);
  const again = expectOk(await ws.kmatrix(['gen']), 'gen again');
  assert.match(again.all, /^5000 targets: 0 added, 0 changed, 0 removed, 5000 unchanged$/m);
  await rm(join(ws.dir, 'targets'), { recursive: true });
  expectOk(await ws.kmatrix(['gen']), 'gen from scratch');
  assert.equal(await treeDigest(ws.dir), digest, 'the same inputs give the same tree, byte for byte');

  await ws.commitAll('5,000 targets');
  const projects: string[] = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'nx show projects').stdout,
  );
  assert.equal(projects.length, 5000);
  assert.ok(projects.includes('kmx-echo--debian-bookworm--6.1.0-2500-arm64--aarch64'));
});
