/**
 * The `build-driver` executor: a thin wrapper over the same build function `kmatrix build` uses.
 * Everything it needs is in the project's target.json, which is also the task's main input.
 */
import type { ExecutorContext } from '@nx/devkit';
import { runBuildTask } from './task.ts';

export default async function buildDriver(_options: Record<string, never>, context: ExecutorContext): Promise<{ success: boolean }> {
  const project = context.projectsConfigurations.projects[context.projectName!];
  if (!project) {
    console.error(`kmatrix: project ${context.projectName} is not in the graph`);
    return { success: false };
  }
  const success = await runBuildTask(context.root, project.name!, project.root, { log: (line) => console.log(line), error: (text) => console.error(text) });
  return { success };
}
