/**
 * CI sharding on a real workspace: a run records each build's time, `kmatrix shard` splits the
 * affected tasks so the shards together build each exactly once, and `--plan` writes the matrix
 * GitHub reads with fromJSON.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace, expectOk, preparePipeline, tasksRun } from '../support/workspace.ts';

test('shards of an affected run build each target once, balanced by recorded build times', {
  timeout: 10 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-shard-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  await ws.git(['tag', 'before-build']);
  expectOk(await ws.nx(['run-many', '-t', 'build-driver', '--skip-nx-cache']), 'nx run-many');
  const timings = JSON.parse(await ws.read('dist/kmatrix/timings.json')) as Record<string, number>;
  const all = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  ) as string[];
  assert.deepEqual(Object.keys(timings).sort(), [...all].sort(), 'every build that ran is timed');
  for (const s of Object.values(timings)) assert.ok(s > 0.5 && s < 300, `a plausible build time: ${s}`);

  // A driver change affects all four targets; two runners split them, each building its own.
  await ws.write(
    'drivers/kmx-echo/kmx_echo_main.c',
    `${await ws.read('drivers/kmx-echo/kmx_echo_main.c')}\n/* shard me */\n`,
  );
  await ws.commitAll('driver change');
  const shards: string[][] = [];
  for (const index of [0, 1]) {
    const r = expectOk(
      await ws.kmatrix(['shard', '--total', '2', '--index', String(index), '--base', 'HEAD~1', '--head', 'HEAD']),
      `shard ${index}`,
    );
    assert.match(r.stderr, new RegExp(`shard ${index + 1} of 2: 2 of 4 tasks, ~\\d+ s expected`));
    shards.push(r.stdout.trim().split(','));
  }
  assert.deepEqual([...shards[0]!, ...shards[1]!].sort(), [...all].sort(), 'together: every affected target, once');
  const run = expectOk(
    await ws.nx(['run-many', '-t', 'build-driver', `--projects=${shards[0]!.join(',')}`]),
    'nx run-many shard 0',
  );
  assert.equal(tasksRun(run.all), 2);

  // Only what a change touches is sharded: one target.json edited → one task in all.
  const one = all[0]!;
  const [, distro, release, arch] = one.split('--');
  const file = `targets/kmx-echo/${distro}/${release}/${arch}/target.json`;
  await ws.write(file, (await ws.read(file)).replace('"strictCompiler": false', '"strictCompiler": true'));
  await ws.commitAll('one target');
  const picked = await Promise.all(
    [0, 1, 2].map((i) =>
      ws.kmatrix(['shard', '--total', '3', '--index', String(i), '--base', 'HEAD~1', '--head', 'HEAD', '--json']),
    ),
  );
  assert.deepEqual(
    picked.flatMap((r) => JSON.parse(r.stdout)),
    [one],
  );

  // The plan for GitHub: the matrix, chunks past 256 jobs, within the output limit.
  const out = await mkdtemp(join(tmpdir(), 'kmatrix-gh-output-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const plan = expectOk(
    await ws.kmatrix([
      'shard',
      '--plan',
      '--base',
      'before-build',
      '--head',
      'HEAD',
      '--github-output',
      join(out, 'output'),
    ]),
    'shard --plan',
  );
  assert.deepEqual(
    JSON.parse(plan.stdout).chunks,
    [{ chunk: 0, matrix: { shard: [0] } }],
    'a few seconds of building: one runner',
  );
  assert.match(await readFile(join(out, 'output'), 'utf8'), /^matrix=\{"shard":\[0\]\}\nchunks=\[.*\]\ntotal=1\n$/);
  const many = Array.from({ length: 600 }, (_, i) => `p${i}`);
  await writeFile(join(out, 'timings.json'), JSON.stringify(Object.fromEntries(many.map((p) => [p, 60]))));
  const big = JSON.parse(
    expectOk(
      await ws.kmatrix([
        'shard',
        '--plan',
        '--projects',
        many.join(','),
        '--timings',
        join(out, 'timings.json'),
        '--max-shards',
        '300',
        '--shard-minutes',
        '1',
      ]),
      'shard --plan (600)',
    ).stdout,
  );
  assert.equal(big.total, 300);
  assert.deepEqual(
    big.chunks.map((c: { matrix: { shard: number[] } }) => c.matrix.shard.length),
    [256, 44],
  );

  // Mistakes are usage errors that say what to do.
  const bad = await ws.kmatrix(['shard', '--total', '2', '--index', '2']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /--index must be 0 … 1, not "2"/);
  const badBase = await ws.kmatrix(['shard', '--total', '2', '--index', '0', '--base', 'no-such-ref']);
  assert.equal(badBase.exitCode, 1);
  assert.match(badBase.stderr, /nx show projects failed[\s\S]*fetch-depth: 0/);
});
