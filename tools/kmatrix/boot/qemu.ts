/**
 * Running one guest under QEMU (its command line is the boot recipe's, recipe/guest.ts; the
 * accelerator is chosen in accel.ts), with a hard timeout that holds even if we die —
 * QEMU runs under coreutils `timeout`, so no guest outlives its deadline by more than 2 s.
 */
import { spawn } from 'node:child_process';
import { KmatrixError } from '../core/errors.ts';
import type { Arch } from '../model/names.ts';
import { QEMU_BINARY } from '../recipe/qemu-binary.ts';

const QEMU_PACKAGE: Record<Arch, string> = { x86_64: 'qemu-system-x86', aarch64: 'qemu-system-arm' };

export interface GuestRun {
  console: string;
  ended: 'exited' | 'timeout';
  /** ms from start until the guest said it had booted (its first KMX line), if it did */
  bootMs?: number;
  totalMs: number;
}

/** QEMU's version line, which is an input of every test-driver task. */
export async function qemuVersion(arch: Arch): Promise<string> {
  const { execa } = await import('execa');
  try {
    return (await execa(QEMU_BINARY[arch], ['--version'])).stdout.split('\n')[0]!.trim();
  } catch (error) {
    throw qemuMissing(arch, error);
  }
}

function qemuMissing(arch: Arch, cause: unknown): KmatrixError {
  return new KmatrixError(`${QEMU_BINARY[arch]} is not installed`, {
    stage: 'boot',
    cause,
    remedy: `install it: apt-get install -y ${QEMU_PACKAGE[arch]} (tools/setup-host.sh does)`,
  });
}

/**
 * Boots one guest and collects its serial console. `onLine` sees each line as it arrives (progress,
 * and "hung at <last line>" needs the last one). Resolves when QEMU exits or the deadline passes.
 */
export const DONE_MARKER = 'KMX-RESULT done';
/** What the guest's /init prints first: the kernel booted and ran our code. */
export const BOOTED_MARKER = 'KMX-RESULT booted';

export function runGuest(
  arch: Arch,
  args: string[],
  timeoutMs: number,
  onLine: (line: string) => void = () => {},
): Promise<GuestRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    // Its own process group, so one kill takes `timeout` and QEMU together.
    const child = spawn('timeout', ['--kill-after=2', `${seconds}s`, QEMU_BINARY[arch], ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    let pending = '';
    let bootMs: number | undefined;
    let finished = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop()!;
      for (const line of parts) {
        if (bootMs === undefined && line.includes(BOOTED_MARKER)) bootMs = Date.now() - started;
        onLine(line.replace(/\r$/, ''));
        // The guest said everything: no need to wait for its power-off.
        if (line.includes(DONE_MARKER)) {
          finished = true;
          stop();
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    // Our own death (Ctrl-C on nx, a SIGTERM) takes the guest along at once; `timeout` covers a SIGKILL.
    const stop = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const onSignal = (signal: NodeJS.Signals) => {
      stop();
      detach();
      process.kill(process.pid, signal); // then die of it, as without this handler
    };
    const detach = () => {
      process.removeListener('exit', stop);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    };
    process.once('exit', stop);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    child.on('error', (error) => {
      detach();
      reject(
        new KmatrixError('coreutils `timeout` is not available to run QEMU under', {
          stage: 'boot',
          cause: error,
          remedy: 'install coreutils',
        }),
      );
    });
    child.on('close', (code) => {
      detach();
      if (pending) onLine(pending);
      const totalMs = Date.now() - started;
      if (finished) return resolve({ console: out, ended: 'exited', bootMs, totalMs });
      if (code === 124 || code === 137) return resolve({ console: out, ended: 'timeout', bootMs, totalMs });
      if (code === 127) return reject(qemuMissing(arch, new Error(err)));
      if (code !== 0 && out === '') {
        return reject(
          new KmatrixError(`QEMU could not start the guest: ${err.trim().split('\n').pop() ?? `exit ${code}`}`, {
            stage: 'boot',
            remedy: `run it by hand to see why: ${QEMU_BINARY[arch]} ${args.join(' ')}`,
          }),
        );
      }
      resolve({ console: out, ended: 'exited', bootMs, totalMs });
    });
  });
}
