/**
 * The `build-driver` executor: a thin wrapper over the same build function `kmatrix build` uses.
 * Everything it needs is in the project's target.json, which is also the task's main input.
 */
import type { ExecutorContext } from '@nx/devkit';
import { join } from 'node:path';
import { buildFromTargetFile } from '../../../tools/kmatrix/build/execute.ts';
import { renderError } from '../../../tools/kmatrix/errors.ts';

export default async function buildDriver(_options: Record<string, never>, context: ExecutorContext): Promise<{ success: boolean }> {
  const project = context.projectsConfigurations.projects[context.projectName!];
  if (!project) {
    console.error(`kmatrix: project ${context.projectName} is not in the graph`);
    return { success: false };
  }
  try {
    const { result } = await buildFromTargetFile(context.root, join(context.root, project.root, 'target.json'), {
      log: (line) => console.log(line),
    });
    for (const m of result.modules) console.log(`built ${m.file} sha256=${m.sha256} vermagic="${m.vermagic}"`);
    return { success: true };
  } catch (error) {
    console.error(renderError(error));
    return { success: false };
  }
}
