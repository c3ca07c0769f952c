/**
 * The `build-driver` executor: a thin wrapper over the same build function `kmatrix build` uses.
 * Everything it needs is in the project's target.json, which is also the task's main input.
 */
import type { ExecutorContext } from '@nx/devkit';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { relative } from 'node:path';
import { buildFromTargetFile } from '../../../tools/kmatrix/build/execute.ts';
import { KmatrixError, renderError } from '../../../tools/kmatrix/errors.ts';
import { writeFileAtomic } from '../../../tools/kmatrix/files/atomic.ts';
import { failureFile, failureKind, type FailureRecord } from '../../../tools/kmatrix/report/run-summary.ts';

export default async function buildDriver(_options: Record<string, never>, context: ExecutorContext): Promise<{ success: boolean }> {
  const project = context.projectsConfigurations.projects[context.projectName!];
  if (!project) {
    console.error(`kmatrix: project ${context.projectName} is not in the graph`);
    return { success: false };
  }
  const record = failureFile(context.root, project.name!);
  try {
    await rm(record, { force: true });
    const { result } = await buildFromTargetFile(context.root, join(context.root, project.root, 'target.json'), {
      log: (line) => console.log(line),
    });
    for (const m of result.modules) console.log(`built ${m.file} sha256=${m.sha256} vermagic="${m.vermagic}"`);
    if (result.skipped) console.log(`skipped: ${result.skipped}`);
    return { success: true };
  } catch (error) {
    console.error(renderError(error));
    // For the run summary: whose fault (compile error or infrastructure) and where the log is.
    const k = error instanceof KmatrixError ? error : undefined;
    const failure: FailureRecord = { stage: k?.stage ?? 'build', kind: k ? failureKind(k.stage) : 'infrastructure', message: (error as Error).message };
    if (k?.stage === 'build') {
      const first = k.problems.find((p) => /\berror\b/.test(p)) ?? k.problems[0];
      if (first) failure.firstError = first;
      const log = k.remedy?.match(/full log: (\S+)/)?.[1];
      if (log) failure.log = relative(context.root, log);
    }
    await writeFileAtomic(record, `${JSON.stringify(failure, null, 2)}\n`).catch(() => {});
    return { success: false };
  }
}
