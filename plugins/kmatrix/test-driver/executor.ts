/**
 * The `test-driver` executor: boots the project's kernel under QEMU with the modules build-driver
 * produced (Nx runs that first: dependsOn) and passes when they load, pass the driver's smoke test
 * and unload. The same function as `kmatrix boot`; the verdict is in dist/boot/<project root>/.
 */
import type { ExecutorContext } from '@nx/devkit';
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
import type { TestDriverOptions } from './task.ts';

export default async function testDriver(
  options: TestDriverOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  enableCompileCache(join(context.root, '.nx', 'node-compile-cache'));
  const { runBootTask } = await import('./task.ts');
  const project = context.projectsConfigurations.projects[context.projectName!];
  if (!project) {
    console.error(`kmatrix: project ${context.projectName} is not in the graph`);
    return { success: false };
  }
  const success = await runBootTask(context.root, project.root, options, {
    log: (line) => console.log(line),
    error: (text) => console.error(text),
  });
  return { success };
}
