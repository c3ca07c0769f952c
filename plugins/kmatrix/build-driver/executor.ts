/**
 * The `build-driver` executor: a thin wrapper over the same build function `kmatrix build` uses.
 * Everything it needs is in the project's target.json, which is also the task's main input.
 */
import type { ExecutorContext } from '@nx/devkit';
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';

export default async function buildDriver(
  _options: Record<string, never>,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  // Nx starts a process per task; Node's on-disk compile cache saves part of loading the build
  // code (dockerode, zod, ours) in each. Enabled before that code is imported.
  enableCompileCache(join(context.root, '.nx', 'node-compile-cache'));
  const { runBuildTask } = await import('./task.ts');
  const project = context.projectsConfigurations.projects[context.projectName!];
  if (!project) {
    console.error(`kmatrix: project ${context.projectName} is not in the graph`);
    return { success: false };
  }
  // Nx runs `parallel` tasks at once (nx.json; Nx's default is 3): each build gets its share of the CPUs.
  const { cpuShare } = await import('../../../tools/kmatrix/compile/execute.ts');
  const jobs = cpuShare(context.nxJsonConfiguration?.parallel ?? 3);
  const success = await runBuildTask(
    context.root,
    project.name!,
    { log: (line) => console.log(line), error: (text) => console.error(text) },
    jobs,
  );
  return { success };
}
