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
import { cacheHits, createWorkspace, expectOk, preparePipeline, tasksRun } from '../support/workspace.ts';

test('a user builds the default matrix, then everything comes from cache, then affected runs exactly what changed', {
  timeout: 20 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-e2e-');
  t.after(() => ws.remove());
  await preparePipeline(ws);

  const projects = expectOk(await ws.nx(['show', 'projects', '--json']), 'nx show projects');
  const names: string[] = JSON.parse(projects.stdout);
  const abis = new Set(names.map((n) => n.split('--')[2]!.replace(/-(cloud-)?amd64$/, '')));
  const flavours = new Set(names.map((n) => n.split('--')[2]!.match(/-((cloud-)?amd64)$/)![1]));
  assert.ok(abis.size >= 2 && flavours.size >= 2, `want ≥2 ABIs × ≥2 flavours, got ${names.join(', ')}`);

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
    await ws.write(file, `${JSON.stringify(target, null, 2)}\n`);
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

  await t.test("a change to the executor's own code affects every target (never zero)", async () => {
    await touch('tools/kmatrix/compile/run.ts', '// touched');
    assert.equal((await affectedProjects()).length, names.length);
    await touch('plugins/kmatrix/index.ts', '// touched');
    assert.equal((await affectedProjects()).length, names.length);
  });

  await t.test('a toolchain change affects the targets built with it', async () => {
    // toolchain.json defines the image (with the package versions in the lock): one more blank line is a change.
    const spec = 'toolchains/debian-bookworm/toolchain.json';
    await ws.write(spec, `${await ws.read(spec)}\n`);
    await ws.commitAll('touch the toolchain definition');
    assert.deepEqual((await affectedProjects()).sort(), [...names].sort());
    const lockFile = 'toolchains/debian-bookworm/toolchain.lock.json';
    const lock = JSON.parse(await ws.read(lockFile));
    lock.contextSha256 = '0'.repeat(64);
    await ws.write(lockFile, `${JSON.stringify(lock, null, 2)}\n`);
    await ws.commitAll('re-pin');
    assert.deepEqual((await affectedProjects()).sort(), [...names].sort());
  });

  await t.test('a change to CLI-only code (crawl, commands) affects no build', async () => {
    await touch('tools/kmatrix/commands/gen.ts', '// touched');
    assert.deepEqual(await affectedProjects(), []);
  });
});
