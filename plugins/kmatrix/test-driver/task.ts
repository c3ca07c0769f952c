/**
 * One test-driver task. A failure of our own making (no QEMU, a download that fails) is written as
 * a result too — status "error", with the remedy — so the run summary can tell it from a module
 * the kernel rejected.
 */
import { join } from 'node:path';
import { loadGuestLock } from '../../../tools/kmatrix/model/guest-lock.ts';
import { bootTest, DEFAULT_BOOT_TIMEOUT_S } from '../../../tools/kmatrix/boot/test.ts';
import { bootOutputDir, passed, renderBootResult, type BootResult } from '../../../tools/kmatrix/boot/result.ts';
import { renderError } from '../../../tools/kmatrix/core/errors.ts';
import { writeFileAtomic } from '../../../tools/kmatrix/core/atomic-file.ts';
import { defaultStoreDir, HeaderStore } from '../../../tools/kmatrix/packages/store.ts';
import { loadTarget } from '../../../tools/kmatrix/model/target.ts';
import { nameParts } from '../../../tools/kmatrix/model/target-place.ts';
import type { TaskOutput } from '../build-driver/task.ts';

export interface TestDriverOptions {
  /** Hard limit for the guest, in seconds */
  timeout?: number;
}

export async function runBootTask(
  root: string,
  projectRoot: string,
  options: TestDriverOptions,
  out: TaskOutput,
): Promise<boolean> {
  const file = join(root, projectRoot, 'target.json');
  try {
    const target = await loadTarget(file);
    const result = await bootTest(root, target, {
      store: new HeaderStore(defaultStoreDir(), out.log),
      lock: await loadGuestLock(root),
      timeoutMs: (options.timeout ?? DEFAULT_BOOT_TIMEOUT_S) * 1000,
      log: out.log,
    });
    const lines = renderBootResult(result);
    if (passed(result)) out.log(lines.join('\n'));
    else out.error(lines.join('\n'));
    return passed(result);
  } catch (error) {
    out.error(renderError(error));
    const name = projectRoot.split('/').slice(1).join('--');
    const place = nameParts(name);
    const result: BootResult = {
      target: name,
      kernelrelease: place.kernelrelease,
      arch: place.arch,
      status: 'error',
      message: renderError(error).replace(/^kmatrix: /, ''),
      kernelLines: [],
      smokeOutput: [],
    };
    await writeFileAtomic(
      join(bootOutputDir(root, place), 'result.json'),
      `${JSON.stringify(result, null, 2)}\n`,
    ).catch(() => {});
    return false;
  }
}
