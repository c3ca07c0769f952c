/**
 * The Nx plugin as a workspace configures it: options in nx.json (target names), the shared task
 * inputs as named inputs nx.json can extend, Nx's one parallelism knob, the TUI left to Nx
 * (on in a local terminal, off in CI), and the graph edges target → driver and → toolchain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { KmatrixError } from '../../tools/kmatrix/core/errors.ts';
import { pluginOptions } from '../../tools/kmatrix/model/plugin-options.ts';
import { buildInputs, bootInputs, SHARED_INPUTS } from '../../tools/kmatrix/compile/inputs.ts';
import { nxParallelism } from '../../plugins/kmatrix/parallelism.ts';
import { driverProjects, targetEdges, toolchainProject } from '../../plugins/kmatrix/graph.ts';
import { buildDriverTarget, testDriverTarget } from '../../plugins/kmatrix/index.ts';
import type { TargetNode } from '../../plugins/kmatrix/target-cache.ts';
import { repoRoot } from '../support/workspace.ts';
import { KMATRIX_VERSION } from '../../tools/kmatrix/core/version.ts';

const nxJson = JSON.parse(readFileSync(join(repoRoot, 'nx.json'), 'utf8'));
const node: TargetNode = {
  name: 'kmx-echo--debian-bookworm--6.1.0-57-amd64--x86_64',
  distro: 'debian-bookworm',
  kernelrelease: '6.1.0-57-amd64',
  arch: 'x86_64',
  family: 'deb',
  driver: { name: 'kmx-echo', path: 'drivers/kmx-echo', modules: ['kmx_echo'], smokeTest: 'smoke-test.sh' },
  toolchain: { name: 'debian-bookworm' },
};

test('nx.json names the targets; a bad option is refused naming nx.json and the field', () => {
  assert.deepEqual(pluginOptions(undefined), { buildTargetName: 'build-driver', testTargetName: 'test-driver' });
  const renamed = pluginOptions({ buildTargetName: 'kmod', testTargetName: 'kmod-boot' });
  const boot = testDriverTarget(node, 'targets/x', renamed);
  assert.deepEqual(boot.dependsOn, ['kmod'], 'the boot test runs after the renamed build');
  const refused = (raw: unknown) => {
    try {
      pluginOptions(raw);
    } catch (error) {
      assert.ok(error instanceof KmatrixError);
      return error.problems;
    }
    assert.fail('accepted');
  };
  assert.deepEqual(refused({ buildTargetName: 'Build Driver' }), [
    'nx.json: plugins["./plugins/kmatrix"].options: buildTargetName: must be lower-case letters, digits and "-", starting with a letter',
  ]);
  assert.match(refused({ parallel: 4 })[0]!, /Unrecognized key: "parallel"/);
  assert.match(refused({ buildTargetName: 'x', testTargetName: 'x' })[0]!, /testTargetName: .*must differ/);
});

test("the shared inputs are nx.json's named inputs when it defines them, else the plugin's own", () => {
  assert.deepEqual(nxJson.namedInputs, SHARED_INPUTS, "the repository's nx.json holds exactly the plugin's defaults");
  const named = Object.keys(nxJson.namedInputs);
  const build = buildDriverTarget(node, 'targets/x', pluginOptions({}), named);
  assert.deepEqual(build.inputs, [
    '{projectRoot}/target.json',
    '{workspaceRoot}/drivers/kmx-echo/**/*',
    '!{workspaceRoot}/drivers/kmx-echo/smoke-test.sh',
    'kmatrixBuild',
  ]);
  assert.deepEqual(buildInputs(node), [...(build.inputs as unknown[]).slice(0, 3), ...SHARED_INPUTS.kmatrixBuild]);
  assert.ok(bootInputs(node, 'qemu-system-x86_64', named).includes('kmatrixBoot'));
  assert.ok(!bootInputs(node, 'qemu-system-x86_64').includes('kmatrixBoot'));
  assert.deepEqual(build.metadata?.technologies, ['kmatrix', 'docker']);
  assert.equal(build.metadata?.help?.command, 'npx kmatrix build --help');
});

test('one parallelism knob: a --batch run gets what nx --parallel (or NX_PARALLEL, or nx.json) says, read as Nx reads it', () => {
  const nx = (...argv: string[]) => nxParallelism(['node', 'nx', 'run-many', '-t', 'build-driver', ...argv], {}, {});
  assert.equal(nx(), 3, "Nx's default");
  assert.equal(nxParallelism([], { parallel: 2 }, {}), 2, "nx.json's");
  assert.equal(nxParallelism(['--parallel=5'], { parallel: 2 }, {}), 5, 'the command line wins');
  assert.equal(nxParallelism([], { parallel: 2 }, { NX_PARALLEL: '6' }), 6, 'NX_PARALLEL over nx.json');
  assert.equal(nx('--parallel', '4'), 4);
  assert.equal(nx('--parallel'), 3);
  assert.equal(nx('--parallel', '--maxParallel=6'), 6);
  assert.equal(nx('--parallel=false'), 1);
  assert.equal(nx('--no-parallel'), 1);
  assert.equal(nx('--parallel=0'), 1, 'at least one, as Nx');
  assert.equal(nx('--parallel=100%'), availableParallelism());
  assert.equal(nx('--parallel=many'), 3, 'never an error: what Nx cannot read counts as its default');
});

test("the TUI is Nx's default: on in a local terminal, off in CI", () => {
  assert.equal(nxJson.tui?.enabled, undefined, 'nx.json does not force it');
  const { shouldUseTui } = createRequire(import.meta.url)('nx/src/tasks-runner/is-tui-enabled');
  const saved = { CI: process.env.CI, NX_TUI: process.env.NX_TUI };
  try {
    delete process.env.CI;
    delete process.env.NX_TUI;
    assert.equal(shouldUseTui(nxJson, {}, true), true);
    process.env.CI = 'true';
    assert.equal(shouldUseTui(nxJson, {}, true), false);
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
});

test('drivers and toolchains are projects; each target depends on its own', () => {
  const drivers = driverProjects(
    'support-matrix.json',
    JSON.stringify({ drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } }, matrix: [] }),
  );
  const projects = {
    ...drivers,
    ...toolchainProject('toolchains/debian-bookworm/toolchain.json'),
    ...toolchainProject('toolchains/debian-trixie/toolchain.json'),
    'targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64': {
      name: node.name,
      root: 'targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64',
      tags: ['driver:kmx-echo', 'distro:debian-bookworm', 'toolchain:debian-bookworm'],
    },
  };
  assert.deepEqual(
    targetEdges(projects).map((e) => [e.source, e.target, e.type, 'sourceFile' in e ? e.sourceFile : undefined]),
    [
      [node.name, 'kmx-echo', 'static', 'targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64/target.json'],
      [
        node.name,
        'toolchain-debian-bookworm',
        'static',
        'targets/kmx-echo/debian-bookworm/6.1.0-57-amd64/x86_64/target.json',
      ],
    ],
  );
  assert.throws(
    () => driverProjects('support-matrix.json', '{"drivers": {"x": {"path": "../outside"}}}'),
    /support-matrix\.json: drivers\.x\.path: must be a relative path inside the repository/,
  );
});

test("kmatrix's version is package.json's", () => {
  assert.equal(KMATRIX_VERSION, JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
});
