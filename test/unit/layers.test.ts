/**
 * The architecture is one-way: read from the real import graph, every import goes to the same
 * layer or one below it, and no import chain comes back. A new module that breaks either rule fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repoRoot } from '../support/workspace.ts';
import { cycles, importsOf, readGraph, seamViolations, upwardImports, type Graph } from '../support/import-graph.ts';

test('no module of the library or the plugin imports from a layer above its own', () => {
  const graph = readGraph(repoRoot);
  assert.ok(graph.size > 100, `the graph was read (${graph.size} files)`);
  assert.deepEqual(upwardImports(graph), []);
});

test('the library and the plugin have no import cycle', () => {
  assert.deepEqual(cycles(readGraph(repoRoot)), []);
});

test("only a family's own folder and the registry import a distro family's modules", () => {
  assert.deepEqual(seamViolations(readGraph(repoRoot)), []);
});

test('an upward import, a cycle, a folder outside the layers and a reach past the distro seam are each caught', () => {
  const graph: Graph = new Map([
    ['tools/kmatrix/model/target.ts', ['tools/kmatrix/core/errors.ts', 'tools/kmatrix/compile/run.ts']],
    ['tools/kmatrix/core/errors.ts', []],
    ['tools/kmatrix/compile/run.ts', ['tools/kmatrix/compile/dkms.ts']],
    ['tools/kmatrix/compile/dkms.ts', ['tools/kmatrix/compile/run.ts']],
    ['tools/kmatrix/utils/misc.ts', []],
    ['tools/kmatrix/utils/more.ts', ['tools/kmatrix/utils/misc.ts']],
    ['tools/kmatrix/gen/plan.ts', ['tools/kmatrix/distros/deb/layout.ts', 'tools/kmatrix/distros/registry.ts']],
    ['tools/kmatrix/distros/registry.ts', ['tools/kmatrix/distros/deb/family.ts']],
    ['tools/kmatrix/distros/deb/family.ts', ['tools/kmatrix/distros/deb/layout.ts']],
  ]);
  assert.deepEqual(upwardImports(graph), [
    'tools/kmatrix/model/target.ts → tools/kmatrix/compile/run.ts (model imports compile, a layer above it)',
    'tools/kmatrix/utils/more.ts is in no layer (its folder is not one of core, model, packages, distros, toolchain, recipe, gen, compile, cache, boot, publish, report, fleet, workspace, commands, plugins)',
  ]);
  assert.deepEqual(cycles(graph), [['tools/kmatrix/compile/dkms.ts', 'tools/kmatrix/compile/run.ts']]);
  assert.deepEqual(seamViolations(graph), [
    "tools/kmatrix/gen/plan.ts → tools/kmatrix/distros/deb/layout.ts (only distros/deb/ and distros/registry.ts may import the deb family's modules)",
  ]);
});

test('imports are read in every form the code uses', () => {
  const text = [
    "import { a } from '../core/a.ts';",
    "import type { B } from './b.ts';",
    "export { c } from './c.ts';",
    "import {\n  d,\n  e,\n} from '../d.ts';",
    "const f = await import('../f.ts');",
    "import './side-effect.ts';",
    "import { z } from 'zod';",
  ].join('\n');
  assert.deepEqual(importsOf(text), ['../core/a.ts', './b.ts', './c.ts', '../d.ts', './side-effect.ts', '../f.ts']);
  // What the running code loads: no dynamic imports asked for, type-only imports erased.
  assert.deepEqual(importsOf(text, { dynamic: false, types: false }), [
    '../core/a.ts',
    './c.ts',
    '../d.ts',
    './side-effect.ts',
  ]);
});
