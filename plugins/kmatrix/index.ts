/**
 * The kmatrix Nx plugin: one project per targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json,
 * each with cached `build-driver` and `test-driver` targets. Their inputs are what runs — the
 * recipes in target.json, the driver's files, RECIPE_VERSION (compile/inputs.ts) — never this
 * plugin's or the library's source.
 */
import { createNodesFromFiles, type CreateNodes, type CreateNodesResult, type TargetConfiguration } from '@nx/devkit';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isRemoved, targetFileSchemaOf } from '../../tools/kmatrix/model/target.ts';
import { nodeOf, TargetCache, type TargetNode } from './target-cache.ts';
import { zodProblems } from '../../tools/kmatrix/core/json-file.ts';
import { toolchainSchema } from '../../tools/kmatrix/model/toolchain.ts';
import { probeRemoteCache } from '../../tools/kmatrix/cache/probe.ts';
import { recordCachedResults, renderSummary, summarize, writeSummary } from '../../tools/kmatrix/report/run-summary.ts';
import type { PostTasksExecutionContext } from '@nx/devkit';
import { QEMU_BINARY } from '../../tools/kmatrix/recipe/guest.ts';
import { bootInputs, buildInputs } from '../../tools/kmatrix/compile/inputs.ts';
import { recordTimings } from '../../tools/kmatrix/fleet/timings.ts';
import { timingsFile } from '../../tools/kmatrix/model/paths.ts';

export interface KmatrixPluginOptions {
  /**
   * For `npm run bench` only: the task runs `true` instead of building, with the same inputs,
   * outputs and caching, so Nx's graph, hashing and cache can be measured at 5,000 targets
   * without 5,000 compiles. Never set it in a real workspace.
   */
  benchmarkNoopBuild?: boolean;
  /** For `npm run bench` only, with benchmarkNoopBuild: the task writes a module of this many random bytes, so the cache has outputs to store and restore. */
  benchmarkModuleBytes?: number;
}

function benchmarkCommand(projectRoot: string, options: KmatrixPluginOptions): string {
  if (!options.benchmarkModuleBytes) return 'true';
  const out = `dist/${projectRoot}`;
  return `mkdir -p '${out}' && head -c ${Math.floor(options.benchmarkModuleBytes)} /dev/urandom > '${out}/kmx_echo.ko'`;
}

/** Every toolchain a target uses exists and is valid: checked once per createNodes call. */
function checkToolchains(workspaceRoot: string, names: Set<string>): void {
  for (const name of names) {
    const file = join('toolchains', name, 'toolchain.json');
    if (!existsSync(join(workspaceRoot, file)))
      throw new Error(`${file} is missing; a target uses toolchain "${name}"`);
    const parsed = toolchainSchema.safeParse(JSON.parse(readFileSync(join(workspaceRoot, file), 'utf8')));
    if (!parsed.success) throw new Error(zodProblems(file, parsed.error).join('\n'));
  }
}

/** The modules a target builds, for people: the policy's list, or a DKMS driver's dkms.conf's. */
function modulesLabel(target: TargetNode): string {
  return target.driver.modules
    ? target.driver.modules.map((m) => `${m}.ko`).join(', ')
    : `the modules dkms.conf names for ${target.kernelrelease}`;
}

export function buildDriverTarget(
  target: TargetNode,
  projectRoot: string,
  options: KmatrixPluginOptions = {},
): TargetConfiguration {
  return {
    ...(options.benchmarkNoopBuild
      ? { executor: 'nx:run-commands', options: { command: benchmarkCommand(projectRoot, options) } }
      : { executor: './plugins/kmatrix:build-driver' }),
    cache: true,
    inputs: buildInputs(target),
    outputs: [`{workspaceRoot}/dist/${projectRoot}`],
    metadata: {
      description: `Build ${modulesLabel(target)} for ${target.kernelrelease} (${target.arch})`,
    },
  };
}

/** Boots the target's kernel under QEMU with the built modules (boot/test.ts); its inputs: compile/inputs.ts. */
export function testDriverTarget(target: TargetNode, projectRoot: string): TargetConfiguration {
  return {
    executor: './plugins/kmatrix:test-driver',
    dependsOn: ['build-driver'],
    cache: true,
    inputs: bootInputs(target, QEMU_BINARY[target.arch]),
    outputs: [`{workspaceRoot}/dist/boot/${projectRoot}`],
    metadata: {
      description: `Boot ${target.kernelrelease} (${target.arch}) under QEMU and prove ${modulesLabel(target)} load${target.driver.smokeTest ? ', pass the smoke test' : ''} and unload`,
    },
  };
}

/** The target in a file, or null for the marker of a removed target (no project). */
function readTarget(file: string, text: string): TargetNode | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${file} is not valid JSON (${(error as Error).message}); run \`npx kmatrix gen\` to regenerate targets/`,
    );
  }
  const parsed = targetFileSchemaOf(value).safeParse(value);
  if (!parsed.success) {
    throw new Error(`${zodProblems(file, parsed.error).join('\n')}\nrun \`npx kmatrix gen\` to regenerate targets/`);
  }
  return isRemoved(parsed.data) ? null : nodeOf(parsed.data);
}

function projectFor(file: string, target: TargetNode, options: KmatrixPluginOptions): CreateNodesResult {
  const root = dirname(file);
  return {
    projects: {
      [root]: {
        name: target.name,
        root,
        tags: [
          `driver:${target.driver.name}`,
          `distro:${target.distro}`,
          `family:${target.family}`,
          `arch:${target.arch}`,
          `toolchain:${target.toolchain.name}`,
        ],
        targets: {
          'build-driver': buildDriverTarget(target, root, options),
          // In the bench too: its graph must weigh what production's does.
          'test-driver': testDriverTarget(target, root),
        },
      },
    },
  };
}

export const createNodes: CreateNodes<KmatrixPluginOptions> = [
  'targets/**/target.json',
  async (files, options, context) => {
    // Parse each target once; a broken one is reported by name (createNodesFromFiles aggregates)
    // while the others still load. Toolchains are read once for all targets.
    const cache = new TargetCache(context.workspaceRoot);
    const targets = new Map<string, TargetNode | Error | null>();
    for (const file of files) {
      try {
        const text = readFileSync(join(context.workspaceRoot, file), 'utf8');
        const sha1 = TargetCache.digest(text);
        let node = cache.get(file, sha1);
        if (node === undefined) {
          node = readTarget(file, text);
          cache.set(file, sha1, node);
        }
        targets.set(file, node);
      } catch (error) {
        targets.set(file, error as Error);
      }
    }
    cache.save();
    const used = new Set([...targets.values()].flatMap((t) => (t instanceof Error || !t ? [] : [t.toolchain.name])));
    checkToolchains(context.workspaceRoot, used);
    return createNodesFromFiles(
      (file) => {
        const target = targets.get(file);
        if (target instanceof Error) throw target;
        if (!target) return {};
        return projectFor(file, target, options ?? {});
      },
      files,
      options ?? {},
      context,
    );
  },
];

/** Before any task: a remote cache that does not answer must not fail the run (see cache/probe.ts). */
export async function preTasksExecution(): Promise<NodeJS.ProcessEnv> {
  const probe = await probeRemoteCache(process.env);
  if (!probe.skip) return {};
  process.stderr.write(`${probe.warning}\n`);
  process.env.NX_SKIP_REMOTE_CACHE = 'true';
  return { NX_SKIP_REMOTE_CACHE: 'true' };
}

/** After the tasks: the per distro × arch summary (with the boot verdicts when test-driver ran), and dist/kmatrix/last-run.json for `kmatrix report`. */
export async function postTasksExecution(_options: unknown, context: PostTasksExecutionContext): Promise<void> {
  const results = Object.values(context.taskResults)
    .filter((r) => r.task.target.target === 'build-driver' || r.task.target.target === 'test-driver')
    .map((r) => ({
      project: r.task.target.project,
      status: r.status,
      target: r.task.target.target,
      startTime: r.task.startTime,
    }));
  if (!results.some((r) => r.target === 'build-driver')) return;
  // What really ran (not restored) and how long it took: what `kmatrix shard` balances by.
  const seconds = Object.fromEntries(
    Object.values(context.taskResults)
      .filter(
        (r) => r.task.target.target === 'build-driver' && r.status === 'success' && r.task.startTime && r.task.endTime,
      )
      .map((r) => [r.task.target.project, (r.task.endTime! - r.task.startTime!) / 1000]),
  );
  await recordTimings(timingsFile(context.workspaceRoot), seconds).catch(() => {});
  const summary = await summarize(context.workspaceRoot, results);
  await recordCachedResults(context.workspaceRoot, summary);
  await writeSummary(context.workspaceRoot, summary);
  process.stderr.write(`\n${renderSummary(summary).join('\n')}\n`);
}
