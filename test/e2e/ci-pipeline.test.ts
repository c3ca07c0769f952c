/**
 * The build and publish workflows as their jobs run them, with fresh clones standing in for
 * runners: two shard runners (write token) build their halves into the shared cache server, the
 * publisher (read token) restores every target from it and publishes, and the nightly diff then
 * finds nothing to do. A pull request's runner (read token) builds a change it cannot write back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { READ_TOKEN, WRITE_TOKEN, nxCacheEnv, startCacheServer } from '../support/cache-server.ts';
import {
  cacheHits,
  cloneWorkspace,
  createWorkspace,
  expectOk,
  preparePipeline,
  tasksRun,
} from '../support/workspace.ts';

test('shards on separate runners fill one cache; the publisher restores all of it and publishes; the nightly diff is then empty', {
  timeout: 15 * 60_000,
}, async (t) => {
  const repo = await createWorkspace('kmatrix-ci-');
  t.after(() => repo.remove());
  await preparePipeline(repo);
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-ci-stores-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const cache = await startCacheServer(join(scratch, 'cache'));
  t.after(() => cache.stop());
  const store = join(scratch, 'published');
  const emptyTree = (await repo.git(['hash-object', '-t', 'tree', '/dev/null'])).stdout.trim();

  // build.yml, job "build", matrix shard 0 and 1 — each on its own runner.
  const built: string[] = [];
  for (const index of [0, 1]) {
    const runner = await cloneWorkspace(repo, `kmatrix-ci-shard-${index}-`);
    t.after(() => runner.remove());
    const env = nxCacheEnv(cache.url, WRITE_TOKEN);
    const projects = expectOk(
      await runner.kmatrix(
        ['shard', '--total', '2', '--index', String(index), '--base', emptyTree, '--head', 'HEAD'],
        env,
      ),
      `shard ${index}`,
    ).stdout.trim();
    assert.ok(projects, `shard ${index} has work`);
    const run = expectOk(
      await runner.nx(['run-many', '-t', 'build-driver', '--batch', `--projects=${projects}`], env),
      `build shard ${index}`,
    );
    // A cold cache: everything built (and the summary line must be there to say so).
    assert.deepEqual(cacheHits(run.all), { hits: 0, total: projects.split(',').length }, run.all);
    built.push(...projects.split(','));
  }
  assert.equal(built.length, 4);
  assert.equal(new Set(built).size, 4, 'no target built twice');

  // publish.yml: a fresh runner with the read token restores every target, then publishes.
  const publisher = await cloneWorkspace(repo, 'kmatrix-ci-publish-');
  t.after(() => publisher.remove());
  const restore = expectOk(
    await publisher.nx(['run-many', '-t', 'build-driver', '--batch'], nxCacheEnv(cache.url, READ_TOKEN)),
    'restore all',
  );
  assert.deepEqual(cacheHits(restore.all), { hits: 4, total: 4 }, restore.all);
  const published = expectOk(await publisher.kmatrix(['publish', '--store', store]), 'publish');
  assert.match(published.stdout, /^4 published, 0 unchanged;/m);

  // nightly.yml: nothing changed since, so no pull request.
  const diff = await repo.kmatrix(['diff', '--published', store]);
  assert.equal(diff.exitCode, 0, diff.all);

  // A pull request changes the driver: its runner (read token) builds the affected targets and
  // cannot write them into main's cache.
  await repo.write(
    'drivers/kmx-echo/kmx_echo_main.c',
    `${await repo.read('drivers/kmx-echo/kmx_echo_main.c')}\n/* a pull request */\n`,
  );
  await repo.commitAll('a pull request');
  const pr = await cloneWorkspace(repo, 'kmatrix-ci-pr-');
  t.after(() => pr.remove());
  const prRun = await pr.nx(
    ['affected', '-t', 'build-driver', '--batch', '--base=HEAD~1', '--head=HEAD'],
    nxCacheEnv(cache.url, READ_TOKEN),
  );
  assert.equal(prRun.exitCode, 0, `a read-only cache does not fail the pull request's build:\n${prRun.all}`);
  assert.equal(tasksRun(prRun.all), 4, prRun.all);
  const writes = cache.accessLog().filter((e) => e.method === 'PUT');
  assert.equal(writes.filter((e) => e.status === 200).length, 4, 'only the shard runners wrote');
  assert.ok(
    writes.some((e) => e.status === 403),
    "the pull request's uploads were refused",
  );
  const changed = await repo.kmatrix(['diff', '--published', store, '--json']);
  assert.equal(changed.exitCode, 1);
  assert.equal(JSON.parse(changed.stdout).changed.length, 4);
});
