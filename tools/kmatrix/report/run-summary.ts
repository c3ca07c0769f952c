/**
 * The end of every `nx run-many` / `nx affected` of build-driver: what was built, restored from a
 * cache, failed or skipped, per distro × arch, and for each failure whether it is the driver's
 * fault (a compile error: its first error line) or the infrastructure's (a download, Docker, a
 * toolchain), with the path of its full log. Written to dist/kmatrix/last-run.json for
 * `kmatrix report` and printed.
 */
import { lastRunFile } from '../model/paths.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { readBuildRecord } from '../model/build-record.ts';
import {
  readResult,
  recordResult,
  targetFileSha256,
  type FailureRecord,
  type Outcome,
  type TargetResult,
} from '../compile/result.ts';
import { inParallel } from '../core/pool.ts';
import { nameParts, outputDir } from '../model/target-place.ts';
import { bootLabel, bootOutputDir, type BootOutcome, type BootResult } from '../boot/result.ts';

/** How many small result files are written at once. */
const IO_WIDTH = 32;

export interface TargetRun {
  name: string;
  distro: string;
  arch: string;
  outcome: Outcome;
  failure?: FailureRecord;
  /** Why a skipped target was skipped */
  reason?: string;
  /** Restored from a cache (local or remote) rather than built by this run */
  fromCache?: boolean;
  /** The Nx task hash of this run's task */
  taskHash?: string;
  /** The test-driver verdict, when the run included it ('skipped': its build failed) */
  boot?: { status: BootOutcome | 'skipped'; message: string; console?: string };
}

/** Boot outcomes that mean "the module does not work on this kernel". */
const NOT_LOADING = new Set<string>([
  'rejected',
  'smoke-failed',
  'unload-failed',
  'kernel-error',
  'hung',
  'wrong-kernel',
  'crashed',
]);

export interface RunSummary {
  finishedAt: string;
  targets: TargetRun[];
}

/** Each restored target's result record as it was before this run: read once, by summarize, for recordCachedResults. */
export type LastResults = ReadonlyMap<string, TargetResult | undefined>;

const OUTCOME: Record<string, Outcome> = {
  success: 'built',
  'local-cache': 'cached',
  'local-cache-kept-existing': 'cached',
  'remote-cache': 'cached',
  failure: 'failed',
  skipped: 'skipped',
  stopped: 'skipped',
};

export interface TaskStatus {
  project: string;
  status: string;
  /** build-driver (default) or test-driver */
  target?: string;
  /** When the task started (ms since the epoch), as Nx says */
  startTime?: number;
  /** The task's hash, as Nx computed it */
  hash?: string;
}

export async function summarize(
  root: string,
  tasks: TaskStatus[],
): Promise<{ summary: RunSummary; lastResults: LastResults }> {
  const targets: TargetRun[] = [];
  const lastResults = new Map<string, TargetResult | undefined>();
  const results = tasks.filter((t) => (t.target ?? 'build-driver') === 'build-driver');
  // The records are small and read synchronously (see readOwnRecord): one after another is fastest.
  for (const r of results) {
    const [, distro, , arch] = r.project.split('--');
    if (!distro || !arch) continue;
    const run: TargetRun = { name: r.project, distro, arch, outcome: OUTCOME[r.status] ?? 'skipped' };
    if (r.hash) run.taskHash = r.hash;
    if (run.outcome === 'cached') run.fromCache = true;
    // A DKMS driver that excludes the kernel succeeds with a skip record: report it as skipped,
    // with why. A restore of a task whose result is recorded for its hash already says so.
    const known = run.fromCache ? await readResult(root, r.project) : undefined;
    if (run.fromCache) lastResults.set(r.project, known);
    const skipped =
      known && r.hash && known.taskHash === r.hash
        ? known.reason
        : (await readBuildRecord(outputDir(root, nameParts(r.project))))?.skipped;
    if (run.outcome !== 'failed' && skipped) {
      run.outcome = 'skipped';
      run.reason = skipped;
    }
    if (run.outcome === 'failed') {
      // Only a record this run's task wrote: an older one is not why it failed now.
      const result = await readResult(root, r.project);
      const fresh = result && (r.startTime === undefined || Date.parse(result.at) >= r.startTime - 1000);
      run.failure = (fresh && result.failure) || {
        stage: 'build',
        kind: 'input',
        message: 'the task failed without a kmatrix result record (see its output above)',
      };
    }
    targets.push(run);
  }
  for (const r of tasks.filter((t) => t.target === 'test-driver')) {
    const run = targets.find((t) => t.name === r.project);
    if (!run) continue;
    const result = await readFile(join(bootOutputDir(root, nameParts(r.project)), 'result.json'), 'utf8').then(
      (t) => JSON.parse(t) as BootResult,
      () => undefined,
    );
    const outcome = OUTCOME[r.status];
    if (outcome === 'skipped' || !result)
      run.boot = {
        status: 'skipped',
        message:
          outcome === 'skipped'
            ? 'not run: its build failed or the run stopped'
            : 'no result recorded (see the task output)',
      };
    else
      run.boot = {
        status: result.status,
        message: result.message,
        ...(result.console ? { console: result.console } : {}),
      };
  }
  targets.sort((a, b) => a.name.localeCompare(b.name));
  return { summary: { finishedAt: new Date().toISOString(), targets }, lastResults };
}

export function renderSummary(s: RunSummary): string[] {
  const rows = new Map<string, Record<Outcome, number>>();
  for (const t of s.targets) {
    const key = `${t.distro} ${t.arch}`;
    const row = rows.get(key) ?? { built: 0, cached: 0, failed: 0, skipped: 0 };
    row[t.outcome]++;
    rows.set(key, row);
  }
  const booted = s.targets.some((t) => t.boot);
  const boots = new Map<string, { loads: number; failing: number; untested: number }>();
  for (const t of s.targets) {
    if (!t.boot) continue;
    const key = `${t.distro} ${t.arch}`;
    const b = boots.get(key) ?? { loads: 0, failing: 0, untested: 0 };
    if (t.boot.status === 'loads') b.loads++;
    else if (NOT_LOADING.has(t.boot.status)) b.failing++;
    else b.untested++;
    boots.set(key, b);
  }
  const lines = [
    `kmatrix: ${booted ? 'build-driver and test-driver' : 'build-driver'} summary, ${s.targets.length} target${s.targets.length === 1 ? '' : 's'}`,
  ];
  lines.push(
    `  ${'distro × arch'.padEnd(32)} built  cached  failed  skipped${booted ? '  loads ✓  loads ✗  untested' : ''}`,
  );
  for (const [key, r] of [...rows].sort()) {
    const b = boots.get(key) ?? { loads: 0, failing: 0, untested: 0 };
    const bootColumns = booted
      ? `  ${String(b.loads).padStart(7)}  ${String(b.failing).padStart(7)}  ${String(b.untested).padStart(8)}`
      : '';
    lines.push(
      `  ${key.padEnd(32)} ${String(r.built).padStart(5)}  ${String(r.cached).padStart(6)}  ${String(r.failed).padStart(6)}  ${String(r.skipped).padStart(7)}${bootColumns}`,
    );
  }
  const skipped = s.targets.filter((t) => t.reason);
  if (skipped.length > 0) lines.push('  skipped:');
  for (const t of skipped) lines.push(`    ${t.name}: ${t.reason}`);
  const failed = s.targets.filter((t) => t.failure);
  if (failed.length > 0) lines.push('  failed:');
  for (const t of failed) {
    const f = t.failure!;
    const what =
      f.kind === 'compile'
        ? `compile error: ${f.firstError ?? f.message}`
        : f.kind === 'infrastructure'
          ? `infrastructure (${f.stage}): ${f.message}`
          : f.message;
    lines.push(`    ${t.name}: ${what}`);
    if (f.log) lines.push(`      log: ${f.log}`);
  }
  const notLoading = s.targets.filter((t) => t.boot && t.boot.status !== 'loads');
  if (notLoading.length > 0) lines.push('  not proven to load:');
  for (const t of notLoading) {
    const b = t.boot!;
    lines.push(`    ${t.name}: ${b.status === 'skipped' ? 'not tested' : bootLabel(b.status)} — ${b.message}`);
    if (b.console) lines.push(`      console: ${b.console}`);
  }
  return lines;
}

/**
 * What a run restored from a cache becomes the target's latest result too (what it built or
 * failed, the task itself recorded); a task Nx skipped or stopped leaves the last result as it was.
 * A result that already says the same for the same task hash (or, without one, the same
 * target.json bytes) is kept as it is (its time is when it became true): an all-cached run of
 * 5,000 targets rewrote 5,000 files for nothing (~2.9 s of 7.8 s, profiled). The records as they
 * were come from summarize, which has read them already.
 */
export async function recordCachedResults(root: string, s: RunSummary, lastResults: LastResults): Promise<void> {
  await inParallel(
    s.targets.filter((t) => t.fromCache),
    async (t) => {
      const now: Omit<TargetResult, 'at' | 'targetFileSha256'> = t.reason
        ? { outcome: 'skipped', reason: t.reason }
        : { outcome: 'cached' };
      const last = lastResults.get(t.name);
      const same = last?.outcome === now.outcome && last.reason === now.reason;
      // The same task hash: the same target.json and sources, nothing to check further.
      if (same && t.taskHash && last.taskHash === t.taskHash) return;
      const sha256 = await targetFileSha256(root, t.name);
      if (same && last.targetFileSha256 === sha256 && !t.taskHash) return;
      await recordResult(root, t.name, { ...now, ...(t.taskHash ? { taskHash: t.taskHash } : {}) }, sha256);
    },
    IO_WIDTH,
  );
}

export async function writeSummary(root: string, s: RunSummary): Promise<void> {
  await writeFileAtomic(lastRunFile(root), `${JSON.stringify(s, null, 2)}\n`);
}
