/**
 * One build-driver task, whoever runs it: the per-task executor (one process per target) and the
 * batch implementation (one process for many) both call this, so they cannot drift apart.
 */
import { join, relative } from 'node:path';
import { rm } from 'node:fs/promises';
import { buildFromTargetFile } from '../../../tools/kmatrix/build/execute.ts';
import { KmatrixError, renderError } from '../../../tools/kmatrix/errors.ts';
import { writeFileAtomic } from '../../../tools/kmatrix/files/atomic.ts';
import { failureFile, failureKind, type FailureRecord } from '../../../tools/kmatrix/report/run-summary.ts';

export interface TaskOutput {
  log(line: string): void;
  error(text: string): void;
}

export async function runBuildTask(root: string, projectName: string, projectRoot: string, out: TaskOutput): Promise<boolean> {
  const record = failureFile(root, projectName);
  try {
    await rm(record, { force: true });
    const { result } = await buildFromTargetFile(root, join(root, projectRoot, 'target.json'), { log: out.log });
    for (const m of result.modules) out.log(`built ${m.file} sha256=${m.sha256} vermagic="${m.vermagic}"`);
    if (result.skipped) out.log(`skipped: ${result.skipped}`);
    return true;
  } catch (error) {
    out.error(renderError(error));
    // For the run summary: whose fault (compile error or infrastructure) and where the log is.
    const k = error instanceof KmatrixError ? error : undefined;
    const failure: FailureRecord = { stage: k?.stage ?? 'build', kind: k ? failureKind(k.stage) : 'infrastructure', message: (error as Error).message };
    if (k?.stage === 'build') {
      const first = k.problems.find((p) => /\berror\b/.test(p)) ?? k.problems[0];
      if (first) failure.firstError = first;
      const log = k.remedy?.match(/full log: (\S+)/)?.[1];
      if (log) failure.log = relative(root, log);
    }
    await writeFileAtomic(record, `${JSON.stringify(failure, null, 2)}\n`).catch(() => {});
    return false;
  }
}
