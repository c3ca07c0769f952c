/**
 * A build's inputs (compile/inputs.ts) leave out code that never runs in a build, so editing it
 * rebuilds nothing. That is only safe if the build really never runs it: every module the
 * build-driver executor can load must be an input, read from the real import graph.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBuildCode } from '../../tools/kmatrix/compile/inputs.ts';
import { closure, readGraph, type Graph } from '../support/import-graph.ts';
import { repoRoot } from '../support/workspace.ts';

/** The executors Nx runs for build-driver (executors.json), and everything they load. */
function buildCode(graph: Graph, lazy: Graph): Set<string> {
  const executors = JSON.parse(readFileSync(join(repoRoot, 'plugins/kmatrix/executors.json'), 'utf8')) as {
    executors: Record<string, { implementation: string; batchImplementation?: string }>;
  };
  const driver = executors.executors['build-driver']!;
  const entries = [driver.implementation, driver.batchImplementation]
    .filter((f): f is string => Boolean(f))
    .map((f) => join('plugins/kmatrix', f.endsWith('.ts') ? f : `${f}.ts`));
  // Static imports everywhere (type-only ones load nothing); the plugin's own lazy imports too (the executor loads its task so).
  const edges: Graph = new Map(
    [...graph].map(([f, tos]) => [f, f.startsWith('plugins/') ? (lazy.get(f) ?? tos) : tos]),
  );
  return closure(edges, entries);
}

/** Modules a build can load that are not among its inputs. */
const notInputs = (code: Set<string>) => [...code].filter((f) => !isBuildCode(f)).sort();

test('every module the build-driver executor loads is an input of build-driver', () => {
  const code = buildCode(readGraph(repoRoot, { dynamic: false, types: false }), readGraph(repoRoot, { types: false }));
  assert.ok(
    code.has('tools/kmatrix/compile/run.ts') && code.has('tools/kmatrix/distros/deb/layout.ts'),
    [...code].join('\n'),
  );
  assert.deepEqual(notInputs(code), []);
});

test('crawling, gen, publishing and the CLI are not build inputs; the build library, its distro layouts and the plugin are', () => {
  for (const f of [
    'tools/kmatrix/distros/deb/archive/crawl.ts',
    'tools/kmatrix/gen/plan.ts',
    'tools/kmatrix/commands/gen.ts',
    'tools/kmatrix/publish/publish.ts',
    'tools/kmatrix/cli.ts',
    'tools/kmatrix/boot/qemu.ts',
  ]) {
    assert.equal(isBuildCode(f), false, f);
  }
  for (const f of [
    'tools/kmatrix/compile/run.ts',
    'tools/kmatrix/compile/dkms-build.sh',
    'tools/kmatrix/distros/deb/layout.ts',
    'tools/kmatrix/distros/registry.ts',
    'plugins/kmatrix/executors.json',
  ]) {
    assert.equal(isBuildCode(f), true, f);
  }
});

test('a build module importing crawl code would be caught', () => {
  const graph: Graph = new Map([
    ['plugins/kmatrix/build-driver/executor.ts', ['tools/kmatrix/compile/run.ts']],
    ['tools/kmatrix/compile/run.ts', ['tools/kmatrix/distros/deb/archive/crawl.ts']],
  ]);
  assert.deepEqual(notInputs(closure(graph, ['plugins/kmatrix/build-driver/executor.ts'])), [
    'tools/kmatrix/distros/deb/archive/crawl.ts',
  ]);
});
