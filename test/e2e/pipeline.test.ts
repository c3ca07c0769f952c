/**
 * The walking pipeline as a user runs it, in a fresh git workspace: crawl → toolchain → gen →
 * `nx run-many -t build-driver` (real .ko files, real Debian headers, real Docker) → all cached →
 * `nx affected` picks exactly what a change touches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheHits, createWorkspace, expectOk, preparePipeline, tasksRun, writeTarget } from '../support/workspace.ts';

test('a user builds the default matrix, then everything comes from cache, then affected runs exactly what changed', {
  timeout: 20 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-e2e-');
  t.after(() => ws.remove());
  await preparePipeline(ws);

  const projects = expectOk(
    await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']),
    'nx show projects',
  );
  const names: string[] = JSON.parse(projects.stdout);
  const abis = new Set(names.map((n) => n.split('--')[2]!.replace(/-(cloud-)?amd64$/, '')));
  const flavours = new Set(names.map((n) => n.split('--')[2]!.match(/-((cloud-)?amd64)$/)![1]));
  assert.ok(abis.size >= 2 && flavours.size >= 2, `want ≥2 ABIs × ≥2 flavours, got ${names.join(', ')}`);

  await t.test('nx graph shows driver → targets ← toolchain; nx show project stays clean JSON', async () => {
    const graphFile = join(ws.dir, 'graph.json');
    expectOk(await ws.nx(['graph', `--file=${graphFile}`]), 'nx graph --file');
    const { graph } = JSON.parse(await ws.read('graph.json'));
    assert.equal(graph.nodes['kmx-echo'].data.root, 'drivers/kmx-echo');
    for (const name of names) {
      const toolchain = JSON.parse(await ws.read(join('targets', ...name.split('--'), 'target.json'))).toolchain.name;
      assert.deepEqual(
        graph.dependencies[name].map((d: { target: string }) => d.target).sort(),
        ['kmx-echo', `toolchain-${toolchain}`].sort(),
      );
      assert.equal(graph.nodes[`toolchain-${toolchain}`].data.root, `toolchains/${toolchain}`);
    }
    const shown = expectOk(await ws.nx(['show', 'project', names[0]!, '--json']), 'nx show project');
    const project = JSON.parse(shown.stdout);
    assert.deepEqual(project.targets['build-driver'].metadata.technologies, ['kmatrix', 'docker']);
    assert.ok(project.targets['build-driver'].inputs.includes('kmatrixBuild'));
  });

  await t.test('first run builds every target for real', async () => {
    const run = expectOk(await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']), 'nx run-many');
    assert.equal(tasksRun(run.all), names.length);
    assert.deepEqual(cacheHits(run.all), { hits: 0, total: names.length });
    for (const name of names) {
      const [driver, distro, release, arch] = name.split('--') as [string, string, string, string];
      const out = join(ws.dir, 'dist', 'targets', driver, distro, release, arch);
      assert.deepEqual((await readdir(out)).sort(), ['build.json', 'build.log', 'kmx_echo.ko']);
      const { stdout: vermagic } = await execa('modinfo', ['-F', 'vermagic', join(out, 'kmx_echo.ko')]);
      assert.equal(vermagic.split(' ')[0], release, `vermagic of ${name}`);
      const provenance = JSON.parse(
        await ws.read(join('dist', 'targets', driver, distro, release, arch, 'build.json')),
      );
      assert.match(provenance.inputs.toolchain.image, /@sha256:[0-9a-f]{64}$/);
      assert.equal(provenance.outputs[0].file, 'kmx_echo.ko');
    }
  });

  await t.test('second run is 100% cache hits', async () => {
    const run = expectOk(await ws.nx(['run-many', '-t', 'build-driver']), 'nx run-many (cached)');
    assert.deepEqual(cacheHits(run.all), { hits: names.length, total: names.length });
    assert.match(
      run.all,
      new RegExp(`from the cache instead of running the command for ${names.length} out of ${names.length} tasks`),
    );
  });

  const affected = async () => {
    const r = expectOk(
      await ws.nx(['affected', '-t', 'build-driver', '--base=HEAD~1', '--head=HEAD', '--output-style=static']),
      'nx affected',
    );
    return { run: tasksRun(r.all), output: r.all };
  };

  await t.test('editing one target.json and committing affects exactly that target', async () => {
    const file = join('targets', ...names[0]!.split('--'), 'target.json');
    const target = JSON.parse(await ws.read(file));
    target.build.env.KBUILD_BUILD_USER = 'someone-else';
    await writeTarget(ws, file, target);
    await ws.commitAll('edit one target');
    const { run, output } = await affected();
    assert.equal(run, 1, output);
    assert.match(output, new RegExp(names[0]!.replace(/[+.]/g, '\\$&')));
  });

  await t.test('a README change affects no build', async () => {
    await ws.write('README.md', `${await ws.read('README.md')}\nA line.\n`);
    await ws.commitAll('docs');
    const { run, output } = await affected();
    assert.equal(run, 0, output);
    assert.match(output, /No tasks were run/);
  });

  await t.test('a driver source change affects every target of that driver', async () => {
    await ws.write(
      'drivers/kmx-echo/kmx_echo_main.c',
      `${await ws.read('drivers/kmx-echo/kmx_echo_main.c')}\n/* touched */\n`,
    );
    await ws.commitAll('driver change');
    const { run, output } = await affected();
    assert.equal(run, names.length, output);
  });

  const affectedProjects = async (): Promise<string[]> =>
    JSON.parse(
      expectOk(
        await ws.nx(['show', 'projects', '--affected', '-t', 'build-driver', '--base=HEAD~1', '--head=HEAD', '--json']),
        'nx show projects --affected',
      ).stdout,
    );
  const touch = async (file: string, comment: string) => {
    await ws.write(file, `${await ws.read(file)}\n${comment}\n`);
    await ws.commitAll(`touch ${file}`);
  };

  const edit = async (file: string, from: string, to: string) => {
    const text = await ws.read(file);
    assert.ok(text.includes(from), `${file} holds ${from}`);
    await ws.write(file, text.replace(from, to));
  };

  await t.test('a comment and a pure refactor in the build library run no task, and `gen --check` passes', async () => {
    await touch('tools/kmatrix/compile/run.ts', '// a comment nobody runs');
    await edit(
      'tools/kmatrix/compile/prepare.ts',
      'const trees = new Map<string, string>();',
      'const byDigest = new Map<string, string>();',
    );
    await edit(
      'tools/kmatrix/compile/prepare.ts',
      'trees.set(pkg.sha256, await store.tree(pkg));\n  return trees;',
      'byDigest.set(pkg.sha256, await store.tree(pkg));\n  return byDigest;',
    );
    await ws.commitAll('refactor: rename a local');
    expectOk(await ws.kmatrix(['gen', '--check']), 'kmatrix gen --check');
    assert.deepEqual(await affectedProjects(), []);
    const { run, output } = await affected();
    assert.equal(run, 0, output);
  });

  const cloud = names.filter((n) => n.includes('-cloud-amd64--'));
  await t.test(
    'a change to how the make command is rendered: gen rewrites exactly the targets it changes, and affected runs exactly those',
    async () => {
      assert.ok(cloud.length > 0 && cloud.length < names.length, names.join(', '));
      await edit(
        'tools/kmatrix/recipe/build.ts',
        "    'modules',\n  ];",
        "    ...(spec.kernelrelease.endsWith('-cloud-amd64') ? ['KBUILD_VERBOSE=0'] : []),\n    'modules',\n  ];",
      );
      await ws.commitAll('render KBUILD_VERBOSE=0 for cloud kernels');
      assert.deepEqual(await affectedProjects(), [], 'the code change alone keys nothing');
      const check = await ws.kmatrix(['gen', '--check']);
      assert.equal(check.exitCode, 1, check.all);
      for (const n of cloud)
        assert.match(check.all, new RegExp(`stale ${n.replace(/[+.]/g, '\\$&')}\\n\\s+recipe\\.argv`));
      assert.match(check.all, new RegExp(`${cloud.length} of ${names.length} targets hold recipes`));
      const gen = expectOk(await ws.kmatrix(['gen']), 'kmatrix gen');
      assert.deepEqual([...gen.all.matchAll(/^~ (\S+)$/gm)].map((m) => m[1]).sort(), [...cloud].sort());
      await ws.commitAll('gen: re-rendered recipes');
      expectOk(await ws.kmatrix(['gen', '--check']), 'kmatrix gen --check after gen');
      assert.deepEqual((await affectedProjects()).sort(), [...cloud].sort());
      const { run, output } = await affected();
      assert.equal(run, cloud.length, output);
    },
  );

  await t.test(
    'a toolchain change: the graph reaches its targets, but only the digest gen carries into their recipes affects their builds',
    async () => {
      const ofToolchain: string[] = [];
      for (const n of names)
        if (
          JSON.parse(await ws.read(join('targets', ...n.split('--'), 'target.json'))).toolchain.name ===
          'debian-bookworm'
        )
          ofToolchain.push(n);
      assert.ok(ofToolchain.length > 0);
      const spec = 'toolchains/debian-bookworm/toolchain.json';
      // A real JSON change (Nx ignores whitespace-only edits of .json files) that renders nothing new.
      await edit(spec, '"$schema": "../toolchain.schema.json"', '"$schema": "./../toolchain.schema.json"');
      await ws.commitAll('edit the toolchain definition');
      // Project by project, Nx follows the edges target → toolchain …
      const projectLevel = JSON.parse(
        expectOk(
          await ws.nx(['show', 'projects', '--affected', '--base=HEAD~1', '--head=HEAD', '--json']),
          'nx show projects --affected',
        ).stdout,
      ) as string[];
      assert.deepEqual(projectLevel.sort(), ['toolchain-debian-bookworm', ...ofToolchain].sort());
      // … task by task (what `nx affected -t` runs), only a changed input counts: no build's key changed.
      assert.deepEqual(await affectedProjects(), []);
      const lockFile = 'toolchains/debian-bookworm/toolchain.lock.json';
      const lock = JSON.parse(await ws.read(lockFile));
      lock.digest = `sha256:${'0'.repeat(64)}`;
      await ws.write(lockFile, `${JSON.stringify(lock, null, 2)}\n`);
      await ws.commitAll('re-pin');
      assert.deepEqual(
        await affectedProjects(),
        [],
        'the lock alone keys nothing: gen carries the digest into the recipes',
      );
      expectOk(await ws.kmatrix(['gen']), 'kmatrix gen');
      await ws.commitAll('gen: new toolchain digest');
      assert.deepEqual((await affectedProjects()).sort(), [...ofToolchain].sort());
    },
  );

  await t.test('a bumped RECIPE_VERSION affects every target', async () => {
    await edit(
      'tools/kmatrix/recipe/version.ts',
      'export const RECIPE_VERSION = 1;',
      'export const RECIPE_VERSION = 2;',
    );
    await ws.commitAll('bump RECIPE_VERSION');
    assert.deepEqual((await affectedProjects()).sort(), [...names].sort());
  });

  await t.test('a change to CLI-only code (crawl, commands) affects no build', async () => {
    await touch('tools/kmatrix/commands/gen.ts', '// touched');
    assert.deepEqual(await affectedProjects(), []);
  });
});
