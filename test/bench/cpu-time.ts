/**
 * CPU time the whole machine spent busy, from /proc/stat: what a side of a figure cost in CPU,
 * its containers included (a container's processes are not the measuring process's children, so
 * rusage would miss them). Wall time is the figure; this tells overhead from noise: a side that
 * is slower in wall time yet no busier did not do more work, it waited.
 */
import { execaSync } from 'execa';
import { readFileSync } from 'node:fs';

/** Ticks per second of /proc/stat's counters (USER_HZ). */
const HZ = Number(execaSync('getconf', ['CLK_TCK']).stdout) || 100;

/** CPU-seconds the machine has spent busy since boot, all CPUs: user, nice, system, irq, softirq. */
export function busySeconds(): number {
  const [, user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8')
    .split('\n', 1)[0]!
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user! + nice! + system! + irq! + softirq!) / HZ;
}
