/**
 * Reading a boot test's serial console (the `KMX-…` lines of boot/init-script.ts, plus whatever
 * the kernel itself printed) into one verdict. Pure: the same console text always gives the same
 * verdict, so every failure mode is unit-testable from a recorded console.
 */

export type BootStatus =
  /** insmod, smoke test and rmmod ok, no BUG/Oops/WARNING in the kernel log */
  | 'loads'
  /** the kernel refused the module (wrong flavour or ABI, modversions CRC, unknown symbol…) */
  | 'rejected'
  | 'smoke-failed'
  | 'unload-failed'
  /** BUG:, Oops or WARNING: in the kernel log, or a panic */
  | 'kernel-error'
  /** no verdict before the hard timeout */
  | 'hung'
  /** the guest booted another kernel than the target's (a wrong image) */
  | 'wrong-kernel'
  /** QEMU ended before the guest said it was done, without a kernel error to show for it */
  | 'crashed';

export interface BootVerdict {
  status: BootStatus;
  /** One line a person reads first. */
  message: string;
  /** The kernel's own lines that explain it (its message on a rejected module, the oops). */
  kernelLines: string[];
  /** The smoke test's output. */
  smokeOutput: string[];
  /** uname -r inside the guest */
  booted?: string;
}

const KERNEL_ERROR = /(^|\]\s*)(BUG:|Oops|WARNING:|Kernel panic|general protection fault|Unable to handle kernel)/;

function stripTimestamp(line: string): string {
  return line.replace(/^\[\s*\d+\.\d+\]\s*/, '');
}

export function readConsole(
  text: string,
  expected: { kernelrelease: string; modules: string[] },
  ended: 'exited' | 'timeout',
): BootVerdict {
  const lines = text.split(/\r?\n/).map((l) => l.replace(/\r/g, ''));
  const results: string[][] = [];
  const dmesg: string[] = [];
  const smokeOutput: string[] = [];
  const raw: string[] = [];
  for (const line of lines) {
    const at = line.indexOf('KMX-');
    if (at >= 0 && line.startsWith('KMX-RESULT ', at))
      results.push(
        line
          .slice(at + 'KMX-RESULT '.length)
          .trim()
          .split(/\s+/),
      );
    else if (at >= 0 && line.startsWith('KMX-DMESG ', at))
      dmesg.push(stripTimestamp(line.slice(at + 'KMX-DMESG '.length)));
    else if (at >= 0 && line.startsWith('KMX-SMOKE ', at)) smokeOutput.push(line.slice(at + 'KMX-SMOKE '.length));
    else if (line.trim()) raw.push(stripTimestamp(line));
  }
  const find = (word: string) => results.find((r) => r[0] === word);
  const booted = find('booted')?.[1];
  const verdict = (status: BootStatus, message: string, kernelLines: string[] = []): BootVerdict => ({
    status,
    message,
    kernelLines,
    smokeOutput,
    ...(booted ? { booted } : {}),
  });
  // The kernel's own words, wherever they were printed (the console during a crash, the log dump after).
  const kernelLog = [...raw, ...dmesg];
  const errors = kernelLog.filter((l) => KERNEL_ERROR.test(l));
  const errorContext = (first: string) => {
    const i = kernelLog.indexOf(first);
    return kernelLog.slice(i, i + 12);
  };

  if (booted && booted !== expected.kernelrelease) {
    return verdict(
      'wrong-kernel',
      `the guest booted ${booted}, not ${expected.kernelrelease}: the kernel image does not match the target`,
    );
  }
  if (ended === 'timeout' || (!find('done') && errors.length === 0)) {
    const last = [...lines].reverse().find((l) => l.trim()) ?? '(no console output)';
    if (ended === 'timeout')
      return verdict('hung', `hung at: ${last.trim()}`, errors.length > 0 ? errorContext(errors[0]!) : []);
    return verdict('crashed', `QEMU exited before the test finished; last console line: ${last.trim()}`);
  }
  const rejected = find('insmod-failed');
  if (rejected) {
    const module = rejected[1]!;
    // busybox tries finit_module, then init_module: the kernel says the same thing twice.
    const why = [
      ...new Set(
        kernelLog.filter(
          (l) =>
            (l.startsWith(`${module}:`) || l.startsWith(`module ${module}:`)) &&
            !/module verification failed|loading out-of-tree module taints/.test(l),
        ),
      ),
    ];
    const insmod = rejected.slice(2).join(' ');
    return verdict('rejected', `rejected by kernel: ${why[0] ?? insmod}`, why.length > 0 ? why : [insmod]);
  }
  if (errors.length > 0) return verdict('kernel-error', `kernel error: ${errors[0]}`, errorContext(errors[0]!));
  const smoke = find('smoke-failed');
  if (smoke)
    return verdict(
      'smoke-failed',
      `the smoke test exited ${smoke[1]}${smokeOutput.length ? `: ${smokeOutput[smokeOutput.length - 1]}` : ''}`,
    );
  const unload = find('rmmod-failed');
  if (unload) return verdict('unload-failed', `rmmod ${unload[1]} failed: ${unload.slice(2).join(' ')}`);
  const loaded = expected.modules.filter((m) => results.some((r) => r[0] === 'insmod-ok' && r[1] === m));
  const unloaded = expected.modules.filter((m) => results.some((r) => r[0] === 'rmmod-ok' && r[1] === m));
  if (loaded.length !== expected.modules.length || unloaded.length !== expected.modules.length) {
    return verdict(
      'crashed',
      `the guest finished without loading and unloading every module (loaded: ${loaded.join(', ') || 'none'})`,
    );
  }
  const tested = find('smoke-ok') ? 'smoke test ok' : 'no smoke test declared';
  return verdict('loads', `insmod ok, ${tested}, rmmod ok on ${booted}`);
}
