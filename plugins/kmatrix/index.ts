/**
 * The kmatrix Nx plugin: one project per targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json,
 * each with a cached `build-driver` target. Everything that can reach a build's output is an input
 * of it, including this plugin's and the build library's own code (otherwise a change to them would
 * change every result while `nx affected` selected nothing).
 */
import { createNodesFromFiles, type CreateNodes, type CreateNodesContext, type CreateNodesResult, type TargetConfiguration } from '@nx/devkit';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { targetSchema, type Target } from '../../tools/kmatrix/matrix/target.ts';
import { zodProblems } from '../../tools/kmatrix/files/json.ts';

export type KmatrixPluginOptions = Record<string, never>;

/** The build library's folders the executor imports; the CLI-only ones (crawl, commands) are left out. */
const BUILD_CODE_INPUTS = [
  '{workspaceRoot}/plugins/kmatrix/**/*',
  '{workspaceRoot}/tools/kmatrix/**/*.ts',
  '!{workspaceRoot}/tools/kmatrix/commands/**',
  '!{workspaceRoot}/tools/kmatrix/crawl/**',
  '!{workspaceRoot}/tools/kmatrix/cli.ts',
];

/** npm packages whose code runs in the build; any other lockfile change must not rebuild drivers. */
const EXTERNAL_DEPENDENCIES = ['dockerode', 'execa', 'zod'];

export function buildDriverTarget(target: Target, projectRoot: string): TargetConfiguration {
  return {
    executor: './plugins/kmatrix:build-driver',
    cache: true,
    inputs: [
      `{projectRoot}/target.json`,
      `{workspaceRoot}/${target.driver.path}/**/*`,
      `{workspaceRoot}/toolchains/${target.toolchain.name}/**/*`,
      ...BUILD_CODE_INPUTS,
      { externalDependencies: EXTERNAL_DEPENDENCIES },
    ],
    outputs: [`{workspaceRoot}/dist/${projectRoot}`],
    metadata: {
      description: `Build ${target.driver.modules.map((m) => `${m}.ko`).join(', ')} for ${target.kernelrelease} (${target.arch})`,
    },
  };
}

function projectFor(file: string, context: CreateNodesContext): CreateNodesResult {
  const text = readFileSync(join(context.workspaceRoot, file), 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not valid JSON (${(error as Error).message}); run \`npx kmatrix gen\` to regenerate targets/`);
  }
  const parsed = targetSchema.safeParse(value);
  if (!parsed.success) {
    throw new Error(`${zodProblems(file, parsed.error).join('\n')}\nrun \`npx kmatrix gen\` to regenerate targets/`);
  }
  const target = parsed.data;
  const root = dirname(file);
  return {
    projects: {
      [root]: {
        name: target.name,
        root,
        tags: [`driver:${target.driver.name}`, `distro:${target.distro}`, `arch:${target.arch}`, `toolchain:${target.toolchain.name}`],
        targets: { 'build-driver': buildDriverTarget(target, root) },
      },
    },
  };
}

export const createNodes: CreateNodes<KmatrixPluginOptions> = [
  'targets/**/target.json',
  (files, options, context) => createNodesFromFiles((file, _opts, ctx) => projectFor(file, ctx), files, options ?? {}, context),
];
