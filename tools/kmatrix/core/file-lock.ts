/**
 * A cross-process mutex from mkdir (atomic on every filesystem we run on): two kmatrix processes
 * never build the same toolchain, or fetch the same package into one store, at once.
 *
 * Liveness is a heartbeat, not a pid: the holder touches the lock every few seconds, and a lock
 * nobody touched for STALE_MS is taken over, however its holder went (SIGKILL, an OOM kill, a
 * container or machine gone; a pid may have been reused since, or belong to another machine).
 * A caller for which the lock only saves work (the header store: its writes are atomic anyway)
 * bounds its wait and then goes on without it.
 */
import { mkdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const HEARTBEAT_MS = 5_000;
const STALE_MS = 60_000;

export interface LockOptions {
  /** Give up waiting after this long and run without the lock (only where the lock is an optimisation). */
  maxWaitMs?: number;
  /** Said once when the wait is given up. */
  onGiveUp?: () => void;
}

/** Moves a stale lock aside (one taker wins the rename) and removes it. */
async function takeOver(dir: string): Promise<void> {
  const aside = `${dir}.stale-${process.pid}-${Date.now()}`;
  try {
    await rename(dir, aside);
  } catch {
    return; // another waiter took it over first, or its holder released it
  }
  await rm(aside, { recursive: true, force: true });
}

/** Takes the lock: true, or false when it is held by someone alive. */
async function tryTake(dir: string): Promise<boolean> {
  try {
    await mkdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const touched = await stat(dir).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    if (touched !== undefined && Date.now() - touched > STALE_MS) await takeOver(dir);
    return false;
  }
  // Who holds it, for people looking at a waiting process; a lock we cannot describe is not kept.
  await writeFile(join(dir, 'owner'), `${hostname()} pid ${process.pid} since ${new Date().toISOString()}\n`).catch(
    async (error: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw error;
    },
  );
  return true;
}

export async function withLock<T>(
  dir: string,
  onWait: () => void,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  await mkdir(join(dir, '..'), { recursive: true });
  const started = Date.now();
  let told = false;
  while (!(await tryTake(dir))) {
    if (options.maxWaitMs !== undefined && Date.now() - started > options.maxWaitMs) {
      options.onGiveUp?.();
      return fn();
    }
    if (!told) onWait();
    told = true;
    await sleep(250);
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(dir, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    await rm(dir, { recursive: true, force: true });
  }
}
