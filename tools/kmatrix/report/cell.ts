/** One target in the report: its latest result, modules and boot verdict (data.ts gathers them). */
import type { BootOutcome } from '../boot/result.ts';

export type Status = 'built' | 'cached' | 'failed' | 'skipped' | 'excluded' | 'not built';

export interface Cell {
  target: string;
  driver: string;
  distro: string;
  /** The distro's family (deb, rpm): the breakage window's grouping. */
  family: string;
  arch: string;
  kernelrelease: string;
  /** The grid row: one ABI's kernels in their family's plain flavour share a row across arches (6.1.0-57-amd64, -arm64). */
  row: string;
  status: Status;
  modules: { file: string; sha256: string }[];
  /** relative to the workspace */
  log?: string;
  detail?: string;
  /** When the target's latest result was recorded (ISO time) */
  at?: string;
  /** The last boot test of exactly these modules (test-driver), if any */
  boot?: { status: BootOutcome; message: string; console?: string };
}
