/**
 * Drivers and toolchains as Nx projects, and each target's edges to them, so `nx graph` shows
 * driver → targets ← toolchain and `nx show projects --affected` follows a change to a driver's
 * or a toolchain's folder to the targets that use it. The edges carry no inputs: a task's key
 * stays what runs (target.json, the driver's files, RECIPE_VERSION — compile/inputs.ts), and Nx
 * selects `nx affected -t` tasks by their inputs, so a toolchain edit rebuilds nothing until
 * `kmatrix gen` carries a new image digest into the recipes.
 */
// Nx's devkit module, not @nx/devkit: see index.ts
import { DependencyType, type ProjectConfiguration, type RawProjectGraphDependency } from 'nx/src/devkit-exports';
import { dirname } from 'node:path';
import { z } from 'zod';
import { zodProblems } from '../../tools/kmatrix/core/json-file.ts';
import { identifier, repoPath } from '../../tools/kmatrix/model/names.ts';

/** The file each toolchain is defined by; its folder is the toolchain's project. */
export const TOOLCHAIN_FILES = 'toolchains/*/toolchain.json';

export const DRIVER_TAG = 'kmatrix:driver';
export const TOOLCHAIN_TAG = 'kmatrix:toolchain';

/** A toolchain's project name: apart from driver names, which are the drivers' own. */
export const toolchainProjectName = (toolchain: string) => `toolchain-${toolchain}`;

/** Of the policy, only what the graph needs; the rest is `kmatrix gen`'s to check. */
const policyDrivers = z.object({ drivers: z.record(identifier, z.object({ path: repoPath }).loose()) }).loose();

/** The driver projects the policy declares (root: the driver's folder, name: the driver's). */
export function driverProjects(file: string, text: string): Record<string, ProjectConfiguration> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not valid JSON (${(error as Error).message})`);
  }
  const parsed = policyDrivers.safeParse(value);
  if (!parsed.success) throw new Error(zodProblems(file, parsed.error).join('\n'));
  return Object.fromEntries(
    Object.entries(parsed.data.drivers).map(([name, d]) => [
      d.path,
      {
        name,
        root: d.path,
        tags: [DRIVER_TAG],
        targets: {},
        metadata: { description: `Kernel driver ${name}: its targets build and boot it`, technologies: ['kmatrix'] },
      },
    ]),
  );
}

/** The project of one toolchain, from its toolchains/<name>/toolchain.json. */
export function toolchainProject(file: string): Record<string, ProjectConfiguration> {
  const root = dirname(file);
  const name = root.split('/').at(-1)!;
  return {
    [root]: {
      name: toolchainProjectName(name),
      root,
      tags: [TOOLCHAIN_TAG],
      targets: {},
      metadata: {
        description: `Toolchain ${name}: the image (by digest) its targets build in`,
        technologies: ['kmatrix', 'docker'],
      },
    },
  };
}

/** Each target → its driver and its toolchain (read from the target project's tags). */
export function targetEdges(projects: Record<string, ProjectConfiguration>): RawProjectGraphDependency[] {
  const names = new Set<string>();
  for (const p of Object.values(projects))
    if (p.name && (p.tags?.includes(DRIVER_TAG) || p.tags?.includes(TOOLCHAIN_TAG))) names.add(p.name);
  const edges: RawProjectGraphDependency[] = [];
  for (const p of Object.values(projects)) {
    if (!p.name || !p.tags) continue;
    for (const tag of p.tags) {
      const [kind, value] = tag.split(':', 2) as [string, string | undefined];
      const target =
        kind === 'driver' ? value : kind === 'toolchain' && value ? toolchainProjectName(value) : undefined;
      if (target && names.has(target))
        edges.push({ source: p.name, target, type: DependencyType.static, sourceFile: `${p.root}/target.json` });
    }
  }
  return edges;
}
