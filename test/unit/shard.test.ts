/** Sharding: every runner computes the same split, the split is even by time, and GitHub's limits hold. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { GITHUB_MAX_MATRIX_JOBS, planShards, shardTasks } from '../../tools/kmatrix/fleet/shard.ts';
import { repoRoot } from '../support/workspace.ts';

const names = (n: number) => Array.from({ length: n }, (_, i) => `kmx-echo--debian-bookworm--6.1.0-${i}-amd64--x86_64`);

test('every task lands in exactly one shard, whatever order the list came in', () => {
  const all = names(103);
  const shards = shardTasks(all, 8, {});
  const seen = shards.flatMap((s) => s.projects).sort();
  assert.deepEqual(seen, [...all].sort());
  assert.deepEqual(shardTasks([...all].reverse(), 8, {}), shards, 'same split from a list in another order');
  const sizes = shards.map((s) => s.projects.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `even by count without timings: ${sizes}`);
});

test('with past build times, shards are even by time, not by count', () => {
  const all = names(20);
  // Two slow targets (10 minutes) and eighteen quick ones (30 s).
  const timings = Object.fromEntries(all.map((p, i) => [p, i < 2 ? 600 : 30]));
  const shards = shardTasks(all, 3, timings);
  const loads = shards.map((s) => s.expected).sort((a, b) => a - b);
  assert.deepEqual(loads, [540, 600, 600]);
  assert.equal(shards.find((s) => s.expected === 540)!.projects.length, 18, 'the quick ones share the third runner');
  // A target never timed counts as the median of the known ones.
  const withNew = shardTasks([...all, 'kmx-echo--debian-trixie--6.12.1-amd64--x86_64'], 3, timings);
  assert.equal(
    withNew.reduce((a, s) => a + s.expected, 0),
    600 * 2 + 30 * 19,
  );
});

test('more shards than tasks leaves the extra shards empty, never duplicates', () => {
  const shards = shardTasks(names(3), 5, {});
  assert.deepEqual(
    shards.map((s) => s.projects.length),
    [1, 1, 1, 0, 0],
  );
});

test('the plan sizes shards by minutes of building, caps them, and splits past 256 jobs into runs', () => {
  const all = names(5000);
  const minute = Object.fromEntries(all.map((p) => [p, 60]));
  const small = planShards(all.slice(0, 30), minute, { maxShards: 16, targetSeconds: 20 * 60 });
  assert.equal(small.total, 2, '30 minutes of building at ~20 per shard');
  assert.deepEqual(small.chunks, [{ chunk: 0, matrix: { shard: [0, 1] } }]);
  const big = planShards(all, minute, { maxShards: 600, targetSeconds: 10 * 60 });
  assert.equal(big.total, 500);
  assert.deepEqual(
    big.chunks.map((c) => c.matrix.shard.length),
    [GITHUB_MAX_MATRIX_JOBS, 500 - GITHUB_MAX_MATRIX_JOBS],
  );
  assert.equal(big.chunks[1]!.matrix.shard[0], 256, 'the second run continues where the first ends');
  assert.equal(planShards([], minute, { maxShards: 8, targetSeconds: 60 }).total, 0, 'nothing to build: no jobs');
});

test('kmatrix shard takes the task list on stdin, and shards it the same every time', async () => {
  const list = names(10).join('\n');
  const run = (index: number) =>
    execa(
      process.execPath,
      [
        join(repoRoot, 'tools/kmatrix/cli.ts'),
        'shard',
        '--total',
        '3',
        '--index',
        String(index),
        '--projects-file',
        '-',
        '--timings',
        '/nonexistent',
      ],
      { input: list },
    );
  const shards = await Promise.all([0, 1, 2].map(run));
  assert.deepEqual(
    shards.map((r) => r.stdout.split(',').length),
    [4, 3, 3],
  );
  assert.deepEqual(shards.flatMap((r) => r.stdout.split(',')).sort(), names(10).sort());
  assert.equal((await run(1)).stdout, shards[1]!.stdout);
  assert.match(shards[0]!.stderr, /shard 1 of 3: 4 of 10 tasks/);
});
