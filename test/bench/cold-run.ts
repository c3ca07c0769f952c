/**
 * One cold `nx` run of a cold-build figure's side: an empty Nx cache that every task then writes
 * to (--skip-nx-cache would also skip those writes, and leave part of a cold run's cost out),
 * removed afterwards. A failed run or a cache hit is an error: the figure would measure nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheHits, nxBin } from '../support/workspace.ts';
import { measure, type Measured } from './peak-memory.ts';

export async function coldNxRun(cwd: string, env: NodeJS.ProcessEnv, args: string[]): Promise<Measured> {
  const cache = await mkdtemp(join(tmpdir(), 'kmatrix-bench-nx-cache-'));
  const m = await measure(process.execPath, [nxBin, ...args], {
    cwd,
    env: { ...env, NX_CACHE_DIRECTORY: cache },
  }).finally(() => rm(cache, { recursive: true, force: true }));
  if (m.exitCode !== 0) throw new Error(`nx ${args.join(' ')} failed in ${cwd}:\n${m.output.slice(-3000)}`);
  if (cacheHits(m.output)?.hits) throw new Error(`a cold run hit the cache:\n${m.output.slice(-3000)}`);
  return m;
}
