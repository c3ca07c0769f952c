/**
 * One build-driver task, whoever runs it: the per-task executor (one process per target) and the
 * batch implementation (one process for many) both call this, so they cannot drift apart.
 */
import { buildAndRecord } from '../../../tools/kmatrix/compile/execute.ts';
import { renderError } from '../../../tools/kmatrix/core/errors.ts';

export interface TaskOutput {
  log(line: string): void;
  error(text: string): void;
}

/** `jobs`: make -j for a build that can use it (a DKMS driver's MAKE), its share of the CPUs. */
export async function runBuildTask(
  root: string,
  projectName: string,
  out: TaskOutput,
  jobs?: number,
): Promise<boolean> {
  try {
    const { result } = await buildAndRecord(root, projectName, { log: out.log, jobs });
    for (const m of result.modules) out.log(`built ${m.file} sha256=${m.sha256} vermagic="${m.vermagic}"`);
    if (result.skipped) out.log(`skipped: ${result.skipped}`);
    return true;
  } catch (error) {
    out.error(renderError(error));
    return false;
  }
}
