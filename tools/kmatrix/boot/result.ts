/** What a boot test leaves in dist/boot/<target>/result.json, and how it reads. */
import { bootDir } from '../model/paths.ts';
import { join } from 'node:path';
import { targetDir, type TargetPlace } from '../model/target-place.ts';
import type { BootStatus } from './console.ts';
import type { Accel } from '../recipe/guest.ts';

/** gap: nothing to boot (no kernel image in the archive, or a build DKMS skipped); error: the test could not run (QEMU, a download) */
export type BootOutcome = BootStatus | 'gap' | 'error';

export interface BootResult {
  target: string;
  kernelrelease: string;
  arch: string;
  status: BootOutcome;
  message: string;
  kernelLines: string[];
  smokeOutput: string[];
  accel?: Accel;
  qemu?: string;
  image?: { name: string; version: string; sha256: string };
  /** The modules booted, so a report never credits a result to other bytes than it tested */
  modules?: { file: string; sha256: string }[];
  /** boot: QEMU start → the guest's first line; test: the rest (insmod, smoke test, rmmod, log dump) */
  timings?: { bootMs?: number; testMs?: number; totalMs: number };
  /** relative to the workspace */
  console?: string;
}

/** Where a target's boot test leaves its result (beside, not inside, build-driver's output folder). */
export function bootOutputDir(root: string, t: TargetPlace): string {
  return join(bootDir(root), targetDir(t));
}

export function passed(r: Pick<BootResult, 'status'>): boolean {
  return r.status === 'loads' || r.status === 'gap';
}

const LABEL: Record<BootOutcome, string> = {
  loads: 'loads ✓',
  rejected: 'rejected by kernel ✗',
  'smoke-failed': 'smoke test failed ✗',
  'unload-failed': 'unload failed ✗',
  'kernel-error': 'kernel error ✗',
  hung: 'hung ✗',
  'wrong-kernel': 'wrong kernel ✗',
  crashed: 'crashed ✗',
  gap: 'not tested',
  error: 'not tested (infrastructure error) ✗',
};

export function bootLabel(status: BootOutcome): string {
  return LABEL[status];
}

const seconds = (ms?: number) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);

export function renderBootResult(r: BootResult): string[] {
  const lines = [`${r.target}: ${bootLabel(r.status)} — ${r.message}`];
  if (r.timings)
    lines.push(
      `  ${r.accel === 'kvm' ? 'KVM' : 'TCG'}: boot ${seconds(r.timings.bootMs)}, test ${seconds(r.timings.testMs)} (${seconds(r.timings.totalMs)} in all)`,
    );
  if (r.status !== 'loads') for (const l of r.kernelLines.slice(0, 12)) lines.push(`  kernel: ${l}`);
  if (r.status === 'smoke-failed') for (const l of r.smokeOutput.slice(-10)) lines.push(`  smoke: ${l}`);
  if (r.console) lines.push(`  console: ${r.console}`);
  return lines;
}
