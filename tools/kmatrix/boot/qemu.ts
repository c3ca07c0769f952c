/**
 * Running one guest under QEMU: the command line per arch, the accelerator (KVM only when it was
 * seen to boot a kernel on this machine, never because /dev/kvm exists: here it does and a guest
 * hangs at its first instruction of protected mode), and a hard timeout that holds even if we die —
 * QEMU runs under coreutils `timeout`, so no guest outlives its deadline by more than 2 s.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { arch as hostArchOf } from 'node:os';
import { join } from 'node:path';
import { KmatrixError } from '../errors.ts';
import type { Arch } from '../matrix/names.ts';
import type { BootableKernel } from './kernel-image.ts';

export type Accel = 'kvm' | 'tcg';

export const QEMU_BINARY: Record<Arch, string> = { x86_64: 'qemu-system-x86_64', aarch64: 'qemu-system-aarch64' };
const QEMU_PACKAGE: Record<Arch, string> = { x86_64: 'qemu-system-x86', aarch64: 'qemu-system-arm' };

export function qemuArgs(arch: Arch, kernel: BootableKernel, initrd: string, accel: Accel, memoryMiB = 256): string[] {
  const common = ['-nodefaults', '-display', 'none', '-no-reboot', '-m', String(memoryMiB), '-smp', '1', '-serial', 'stdio', '-kernel', kernel.path, '-initrd', initrd];
  // quiet: the emulated UART is slow and boot chatter is not what we test; panic=-1 + -no-reboot
  // turns a panic into QEMU exiting instead of a guest spinning until the timeout.
  const append = (console: string) => ['-append', `console=${console} quiet panic=-1`];
  if (arch === 'x86_64') {
    return [...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']), '-M', 'pc', ...common, ...append('ttyS0')];
  }
  // pauth-impdef: the architected pointer-authentication algorithm costs TCG ~4× the boot time.
  return ['-accel', 'tcg', '-M', 'virt', '-cpu', 'max,pauth-impdef=on', ...common, ...append('ttyAMA0')];
}

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

export function runGuest(arch: Arch, args: string[], timeoutMs: number, onLine: (line: string) => void = () => {}): Promise<GuestRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    // Its own process group, so one kill takes `timeout` and QEMU together.
    const child = spawn('timeout', ['--kill-after=2', `${seconds}s`, QEMU_BINARY[arch], ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
        if (bootMs === undefined && line.includes('KMX-RESULT booted')) bootMs = Date.now() - started;
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
      reject(new KmatrixError('coreutils `timeout` is not available to run QEMU under', { stage: 'boot', cause: error, remedy: 'install coreutils' }));
    });
    child.on('close', (code) => {
      detach();
      if (pending) onLine(pending);
      const totalMs = Date.now() - started;
      if (finished) return resolve({ console: out, ended: 'exited', bootMs, totalMs });
      if (code === 124 || code === 137) return resolve({ console: out, ended: 'timeout', bootMs, totalMs });
      if (code === 127 || (code !== 0 && /No such file|not found/.test(err) && out === '')) return reject(qemuMissing(arch, new Error(err)));
      if (code !== 0 && out === '') {
        return reject(new KmatrixError(`QEMU could not start the guest: ${err.trim().split('\n').pop() ?? `exit ${code}`}`, { stage: 'boot', remedy: `run it by hand to see why: ${QEMU_BINARY[arch]} ${args.join(' ')}` }));
      }
      resolve({ console: out, ended: 'exited', bootMs, totalMs });
    });
  });
}

/**
 * KVM for x86_64 guests on an x86_64 host whose /dev/kvm is usable — and only after a real kernel
 * booted with it here: the verdict is kept per machine boot and QEMU version in the store.
 * KMATRIX_ACCEL=tcg|kvm overrides (kvm still has to work).
 */
export async function chooseAccel(
  arch: Arch,
  storeDir: string,
  probe: (accel: Accel) => Promise<boolean>,
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = () => {},
): Promise<Accel> {
  const wanted = env.KMATRIX_ACCEL ?? 'auto';
  if (!['auto', 'tcg', 'kvm'].includes(wanted)) {
    throw new KmatrixError(`KMATRIX_ACCEL=${wanted} is not one of auto, tcg, kvm`, { stage: 'usage', remedy: 'unset it (auto: KVM when it is seen to work) or set tcg' });
  }
  if (wanted === 'tcg' || arch !== 'x86_64' || hostArchOf() !== 'x64' || !existsSync('/dev/kvm')) return 'tcg';
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  const key = `${bootId} ${await qemuVersion(arch)}`;
  const file = join(storeDir, 'boot', 'kvm-probe.json');
  const known = await readFile(file, 'utf8').then((t) => JSON.parse(t) as { key: string; works: boolean }, () => undefined);
  let works = known?.key === key ? known.works : undefined;
  if (works === undefined) {
    log('checking whether KVM really boots a kernel here (once per machine boot)');
    works = await probe('kvm');
    log(works ? 'KVM works: guests run accelerated' : 'KVM did not boot a kernel here: guests run under TCG (emulation)');
    await mkdir(join(storeDir, 'boot'), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify({ key, works })}\n`);
    await rename(tmp, file);
  }
  if (!works && wanted === 'kvm') {
    throw new KmatrixError('KMATRIX_ACCEL=kvm, but KVM did not boot a kernel on this machine', { stage: 'boot', remedy: 'unset KMATRIX_ACCEL to fall back to TCG, or fix nested virtualisation' });
  }
  return works ? 'kvm' : 'tcg';
}
