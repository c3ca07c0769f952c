/**
 * The kmatrix Nx plugin: one project per targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json,
 * each with cached `build-driver` and `test-driver` targets (their names: plugin options in
 * nx.json). Their inputs are what runs — the recipes in target.json, the driver's files,
 * RECIPE_VERSION (compile/inputs.ts) — never this plugin's or the library's source. Drivers and
 * toolchains are projects too, and each target depends on its own (graph.ts).
 */
// Nx's own devkit module, which @nx/devkit re-exports: @nx/devkit adds its generator and
// executor helpers, which this plugin, loaded on every nx command, never uses (~60–80 ms, measured).
import {
  type CreateDependencies,
  createNodesFromFiles,
  type CreateNodes,
  type CreateNodesResult,
  type TargetConfiguration,
} from 'nx/src/devkit-exports';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nodeOf, TargetCache, type TargetNode } from './target-cache.ts';
import { zodProblems } from '../../tools/kmatrix/core/json-file.ts';
import { toolchainSchema } from '../../tools/kmatrix/model/toolchain.ts';
import { probeRemoteCache } from '../../tools/kmatrix/cache/probe.ts';
import { recordCachedResults, renderSummary, summarize, writeSummary } from '../../tools/kmatrix/report/run-summary.ts';
import type { PostTasksExecutionContext, PreTasksExecutionContext } from 'nx/src/devkit-exports';
import { QEMU_BINARY } from '../../tools/kmatrix/recipe/qemu-binary.ts';
import { bootInputs, buildInputs } from '../../tools/kmatrix/compile/inputs.ts';
import { recordTimings } from '../../tools/kmatrix/fleet/timings.ts';
import { timingsFile } from '../../tools/kmatrix/model/paths.ts';
import { type PluginOptions, pluginOptions } from '../../tools/kmatrix/model/plugin-options.ts';
// The policy file (model/policy.ts's POLICY_FILE) is the file that marks a workspace's root:
// named from there, so that the plugin does not load the policy's schemas on every command.
import { ROOT_MARKER as POLICY_FILE } from '../../tools/kmatrix/core/workspace-root.ts';
import { driverProjects, TOOLCHAIN_FILES, targetEdges, toolchainProject } from './graph.ts';
import { nxParallelism, PARALLEL_ENV } from './parallelism.ts';

/** What the plugin is given in nx.json (validated by pluginOptions). */
export type KmatrixPluginOptions = Partial<PluginOptions>;

/**
 * What `nx show project` shows beside each target, as Nx's own plugins do. Kept small: every
 * property of every project is merged, source-mapped and written by Nx on each command, which at
 * 20,000 targets is seconds (profiled), so `help.example` stays empty.
 */
function targetMetadata(description: string, command: string, technologies: string[]) {
  return { description, technologies, help: { command, example: {} } };
}

/** The bench's build: Nx's no-op (as the plain-Nx baseline's), or a command writing a random module. */
function benchmarkBuild(
  projectRoot: string,
  options: PluginOptions,
): Pick<TargetConfiguration, 'executor' | 'options'> {
  if (!options.benchmarkModuleBytes) return { executor: 'nx:noop' };
  const out = `dist/${projectRoot}`;
  const command = `mkdir -p '${out}' && head -c ${Math.floor(options.benchmarkModuleBytes)} /dev/urandom > '${out}/kmx_echo.ko'`;
  return { executor: 'nx:run-commands', options: { command } };
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
  options: PluginOptions = pluginOptions({}),
  namedInputs: readonly string[] = [],
): TargetConfiguration {
  return {
    ...(options.benchmarkNoopBuild
      ? benchmarkBuild(projectRoot, options)
      : { executor: './plugins/kmatrix:build-driver' }),
    cache: true,
    inputs: buildInputs(target, namedInputs),
    outputs: [`{workspaceRoot}/dist/${projectRoot}`],
    metadata: targetMetadata(
      `Build ${modulesLabel(target)} for ${target.kernelrelease} (${target.arch}) in its toolchain container`,
      'npx kmatrix build --help',
      ['kmatrix', 'docker'],
    ),
  };
}

/** Boots the target's kernel under QEMU with the built modules (boot/test.ts); its inputs: compile/inputs.ts. */
export function testDriverTarget(
  target: TargetNode,
  projectRoot: string,
  options: PluginOptions = pluginOptions({}),
  namedInputs: readonly string[] = [],
): TargetConfiguration {
  return {
    executor: './plugins/kmatrix:test-driver',
    dependsOn: [options.buildTargetName],
    cache: true,
    inputs: bootInputs(target, QEMU_BINARY[target.arch], namedInputs),
    outputs: [`{workspaceRoot}/dist/boot/${projectRoot}`],
    metadata: targetMetadata(
      `Boot ${target.kernelrelease} (${target.arch}) under QEMU and prove ${modulesLabel(target)} load${target.driver.smokeTest ? ', pass the smoke test' : ''} and unload`,
      'npx kmatrix boot --help',
      ['kmatrix', 'qemu'],
    ),
  };
}

/**
 * What reading a target.json the target cache does not know takes — its schemas and the distro
 * families — loaded on the first such file: on most commands every file is known, and loading
 * these modules and building the schemas was a good part of the plugin's load time (profiled).
 */
interface TargetReading {
  targetFileSchemaOf: typeof import('../../tools/kmatrix/model/target.ts').targetFileSchemaOf;
  isRemoved: typeof import('../../tools/kmatrix/model/target.ts').isRemoved;
  familyOfHeaders: typeof import('../../tools/kmatrix/distros/registry.ts').familyOfHeaders;
}
let targetReading: Promise<TargetReading> | undefined;
const loadTargetReading = (): Promise<TargetReading> =>
  (targetReading ??= Promise.all([
    import('../../tools/kmatrix/model/target.ts'),
    import('../../tools/kmatrix/distros/registry.ts'),
  ]).then(([{ targetFileSchemaOf, isRemoved }, { familyOfHeaders }]) => ({
    targetFileSchemaOf,
    isRemoved,
    familyOfHeaders,
  })));

/** The target in a file, or null for the marker of a removed target (no project). */
function readTarget(
  { targetFileSchemaOf, isRemoved, familyOfHeaders }: TargetReading,
  file: string,
  text: string,
): TargetNode | null {
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
  return isRemoved(parsed.data) ? null : nodeOf(parsed.data, familyOfHeaders(parsed.data.headers).name);
}

function projectFor(
  file: string,
  target: TargetNode,
  options: PluginOptions,
  namedInputs: readonly string[],
): CreateNodesResult {
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
          [options.buildTargetName]: buildDriverTarget(target, root, options, namedInputs),
          // In the bench too: its graph must weigh what production's does.
          [options.testTargetName]: testDriverTarget(target, root, options, namedInputs),
        },
      },
    },
  };
}

const TARGET_FILES = 'targets/**/target.json';

export const createNodes: CreateNodes<KmatrixPluginOptions> = [
  `{${TARGET_FILES},${TOOLCHAIN_FILES},${POLICY_FILE}}`,
  async (files, rawOptions, context) => {
    const options = pluginOptions(rawOptions);
    const namedInputs = Object.keys(context.nxJsonConfiguration.namedInputs ?? {});
    // Parse each target once; a broken one is reported by name (createNodesFromFiles aggregates)
    // while the others still load. Toolchains are read once for all targets.
    const cache = await TargetCache.open(context.workspaceRoot);
    const targets = new Map<string, TargetNode | Error | null>();
    for (const file of files) {
      if (!file.startsWith('targets/')) continue;
      try {
        const text = readFileSync(join(context.workspaceRoot, file), 'utf8');
        const key = cache.digest(text);
        let node = cache.get(file, key);
        if (node === undefined) {
          node = readTarget(await loadTargetReading(), file, text);
          cache.set(file, key, node);
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
        if (file === POLICY_FILE)
          return { projects: driverProjects(file, readFileSync(join(context.workspaceRoot, file), 'utf8')) };
        if (file.startsWith('toolchains/')) return { projects: toolchainProject(file) };
        const target = targets.get(file);
        if (target instanceof Error) throw target;
        if (!target) return {};
        return projectFor(file, target, options, namedInputs);
      },
      files,
      rawOptions ?? {},
      context,
    );
  },
];

export const createDependencies: CreateDependencies<KmatrixPluginOptions> = (_options, context) =>
  targetEdges(context.projects);

/** Before any task: a remote cache that does not answer must not fail the run (see cache/probe.ts). */
export async function preTasksExecution(
  _options: unknown,
  context: PreTasksExecutionContext,
): Promise<NodeJS.ProcessEnv> {
  // One parallelism knob: Nx's own --parallel (or nx.json's "parallel"), handed to `--batch`.
  const env: NodeJS.ProcessEnv = { [PARALLEL_ENV]: String(nxParallelism(context.argv, context.nxJsonConfiguration)) };
  const probe = await probeRemoteCache(process.env);
  if (!probe.skip) return env;
  process.stderr.write(`${probe.warning}\n`);
  process.env.NX_SKIP_REMOTE_CACHE = 'true';
  return { ...env, NX_SKIP_REMOTE_CACHE: 'true' };
}

/** After the tasks: the per distro × arch summary (with the boot verdicts when test-driver ran), and dist/kmatrix/last-run.json for `kmatrix report`. */
export async function postTasksExecution(
  rawOptions: KmatrixPluginOptions | undefined,
  context: PostTasksExecutionContext,
): Promise<void> {
  const { buildTargetName, testTargetName } = pluginOptions(rawOptions);
  // The summary knows the targets by their role, whatever the workspace named them.
  const role = (name: string) =>
    name === buildTargetName ? 'build-driver' : name === testTargetName ? 'test-driver' : undefined;
  const results = Object.values(context.taskResults)
    .filter((r) => role(r.task.target.target))
    .map((r) => ({
      project: r.task.target.project,
      status: r.status,
      target: role(r.task.target.target)!,
      startTime: r.task.startTime,
      ...(r.task.hash ? { hash: r.task.hash } : {}),
    }));
  if (!results.some((r) => r.target === 'build-driver')) return;
  // What really ran (not restored) and how long it took: what `kmatrix shard` balances by.
  const seconds = Object.fromEntries(
    Object.values(context.taskResults)
      .filter(
        (r) => r.task.target.target === buildTargetName && r.status === 'success' && r.task.startTime && r.task.endTime,
      )
      .map((r) => [r.task.target.project, (r.task.endTime! - r.task.startTime!) / 1000]),
  );
  await recordTimings(timingsFile(context.workspaceRoot), seconds).catch(() => {});
  const { summary, lastResults } = await summarize(context.workspaceRoot, results);
  await recordCachedResults(context.workspaceRoot, summary, lastResults);
  await writeSummary(context.workspaceRoot, summary);
  process.stderr.write(`\n${renderSummary(summary).join('\n')}\n`);
}
