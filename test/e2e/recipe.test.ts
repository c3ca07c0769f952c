/**
 * The build runs exactly its recipe: a real build's container, as handed to the Docker engine, is
 * what the recipe interpreter renders from target.json's recipe — and a rendered change of the
 * target reaches that container, while a hand-edited recipe is refused before anything runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { ContainerCreateOptions } from 'dockerode';
import { createWorkspace, expectOk, prepareOneTarget, testStore, writeTarget } from '../support/workspace.ts';
import { openBuild, targetFileFor } from '../../tools/kmatrix/compile/execute.ts';
import { buildTarget } from '../../tools/kmatrix/compile/run.ts';
import { containerOptions } from '../../tools/kmatrix/recipe/container.ts';
import { sandboxLimits, userSpec } from '../../tools/kmatrix/recipe/sandbox.ts';
import { loadTarget } from '../../tools/kmatrix/model/target.ts';

/** The engine, recording every container configuration a build creates. */
function recording(docker: Docker, created: ContainerCreateOptions[]): Docker {
  return new Proxy(docker, {
    get(target, prop, receiver) {
      if (prop === 'createContainer')
        return (options: ContainerCreateOptions) => {
          created.push(structuredClone(options));
          return target.createContainer(options);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

test('a build creates exactly the container its recipe renders to; a rendered change reaches it; a hand-edited recipe is refused', {
  timeout: 10 * 60_000,
}, async (t) => {
  process.env.KMATRIX_STORE = testStore;
  const ws = await createWorkspace('kmatrix-recipe-');
  t.after(() => ws.remove());
  const name = await prepareOneTarget(ws);
  const file = targetFileFor(ws.dir, name);

  const build = async () => {
    const opened = await openBuild(ws.dir, file, () => {});
    const created: ContainerCreateOptions[] = [];
    const outDir = join(ws.dir, 'out');
    await buildTarget({
      ...opened,
      docker: recording(opened.docker, created),
      root: ws.dir,
      outDir,
      log: () => {},
      jobs: 1,
    });
    assert.equal(created.length, 1);
    return { created: created[0]!, target: opened.target, repository: opened.repository, outDir };
  };

  const first = await build();
  const binds = first.created.HostConfig!.Binds!;
  const expected = containerOptions(first.target.recipe, {
    repository: first.repository,
    binds: binds.map((b) => {
      const [host, container, mode] = b.split(':') as [string, string, string];
      return { host, container, readOnly: mode === 'ro' };
    }),
    user: userSpec(),
    limits: sandboxLimits(1),
    jobs: 1,
    labels: { 'kmatrix.target': name, 'kmatrix.out': first.outDir },
  });
  assert.deepEqual(first.created, expected);
  // Each mount of the recipe is where the recipe puts it: the kernel's tree, kbuild, the sources.
  const places = binds.map((b) => b.split(':')[1]);
  assert.ok(places.includes(first.target.kernelDir), places.join(' '));
  assert.ok(
    places.some((p) => p!.startsWith('/usr/lib/linux-kbuild-')),
    places.join(' '),
  );
  assert.equal(places.at(-1), '/build/src');
  assert.match(first.created.Image!, /@sha256:[0-9a-f]{64}$/);
  assert.equal(first.created.Image!.split('@')[1], first.target.recipe.image);

  // A change gen would render (another build environment variable) reaches the container.
  const spec = JSON.parse(await ws.read(file.slice(ws.dir.length + 1)));
  spec.build.env.KBUILD_BUILD_HOST = 'recipe-test';
  await writeTarget(ws, file.slice(ws.dir.length + 1), spec);
  const second = await build();
  assert.ok(second.created.Env!.includes('KBUILD_BUILD_HOST=recipe-test'), second.created.Env!.join(' '));
  assert.notDeepEqual(second.created.Env, first.created.Env);

  // A recipe edited by hand (not what this code renders from the target) never runs.
  const edited = await loadTarget(file);
  edited.recipe.argv = [...edited.recipe.argv, 'V=1'];
  await ws.write(file.slice(ws.dir.length + 1), JSON.stringify(edited, null, 2));
  const refused = await ws.kmatrix(['build', name]);
  assert.equal(refused.exitCode, 1, refused.all);
  assert.match(refused.stderr, /target\.json's build recipe is not what this version of kmatrix renders/);
  assert.match(refused.stderr, /recipe\.argv: \[.*\] → \[.*\]/);
  assert.match(refused.stderr, /run `npx kmatrix gen`/);
  expectOk(await ws.kmatrix(['gen']), 'gen re-renders it');
  expectOk(await ws.kmatrix(['gen', '--check']), 'gen --check');
});
