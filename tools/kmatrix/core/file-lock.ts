/**
 * A cross-process mutex from mkdir (atomic on every filesystem we run on), so two kmatrix
 * processes never build the same toolchain at once. A lock whose owner died is taken over.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function withLock<T>(dir: string, onWait: () => void, fn: () => Promise<T>): Promise<T> {
  await mkdir(join(dir, '..'), { recursive: true });
  let told = false;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(join(dir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => '0'));
      if (owner && !alive(owner)) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (!told) onWait();
      told = true;
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
