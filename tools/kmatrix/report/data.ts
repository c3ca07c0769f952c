/**
 * Everything the matrix report shows, gathered from files only (no network, no Docker): the
 * targets, each one's latest build result (compile/result.ts, whichever run produced it), the
 * modules of each output (build.json), failures and logs, boot verdicts, and gen's excluded and
 * skipped kernels (dist/kmatrix/gen-report.json).
 */
import { familyOfHeaders } from '../distros/registry.ts';
import type { GenReport } from '../gen/pipeline.ts';
import { genReportFile, lastRunFile } from '../model/paths.ts';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { compareVersions } from '../model/version.ts';
import { existingTargetFiles } from '../gen/sync.ts';
import { isRemoved, loadTargetFile, type Target } from '../model/target.ts';
import { outputDir } from '../model/target-place.ts';
import type { RunSummary } from './run-summary.ts';
import { readBuildRecord } from '../model/build-record.ts';
import { readResult, targetFileSha256 } from '../compile/result.ts';
import { bootOutputDir, type BootResult } from '../boot/result.ts';
import type { Cell, Status } from './cell.ts';
import { type BreakageWindow, breakageWindows } from './breakage.ts';

export type { Cell, Status } from './cell.ts';

export interface ReportData {
  generatedAt: string;
  lastRunAt?: string;
  cells: Cell[];
  skipped: { what: string; why: string }[];
  counts: Record<Status, number>;
  /** Per driver × family × arch: what works, the first failure, what broke since the last publish (breakage.ts). */
  windows: BreakageWindow[];
  /** Where "newly failing" compares with: the artifact store read, if any. */
  publishedState?: string;
}

async function json<T>(file: string): Promise<T | undefined> {
  return readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as T,
    () => undefined,
  );
}

export async function collectReport(
  root: string,
  published: { names: ReadonlySet<string>; from: string } = { names: new Set(), from: '' },
): Promise<ReportData> {
  const lastRun = await json<RunSummary>(lastRunFile(root));
  const gen = (await json<GenReport>(genReportFile(root))) ?? { excluded: [], skipped: [] };
  const cells: Cell[] = [];
  for (const f of await existingTargetFiles(root)) {
    const t = await loadTargetFile(join(root, f));
    if (isRemoved(t)) continue;
    cells.push(await cellOf(root, t));
  }
  for (const x of gen.excluded) {
    const [driver, distro, kernelrelease, arch] = x.target.split('--') as [string, string, string, string];
    cells.push({
      target: x.target,
      driver,
      distro,
      family: cells.find((c) => c.distro === distro)?.family ?? '',
      arch,
      kernelrelease,
      row: kernelrelease,
      status: 'excluded',
      modules: [],
      detail: x.reason,
    });
  }
  cells.sort(
    (a, b) =>
      a.driver.localeCompare(b.driver) ||
      compareVersions(b.kernelrelease, a.kernelrelease) ||
      a.distro.localeCompare(b.distro) ||
      a.arch.localeCompare(b.arch),
  );
  const counts = { built: 0, cached: 0, failed: 0, skipped: 0, excluded: 0, 'not built': 0 } as Record<Status, number>;
  for (const c of cells) counts[c.status]++;
  return {
    generatedAt: new Date().toISOString(),
    lastRunAt: lastRun?.finishedAt,
    cells,
    skipped: gen.skipped,
    counts,
    windows: breakageWindows(cells, published.names),
    ...(published.from ? { publishedState: published.from } : {}),
  };
}

/**
 * A target's cell: its own latest result (compile/result.ts), whichever run produced it — not only
 * what the last run touched. A result recorded for another target.json is not this target's.
 */
async function cellOf(root: string, t: Target): Promise<Cell> {
  const out = outputDir(root, t);
  const cell: Cell = {
    target: t.name,
    driver: t.driver.name,
    distro: t.distro,
    family: familyOfHeaders(t.headers).name,
    arch: t.arch,
    kernelrelease: t.kernelrelease,
    row: familyOfHeaders(t.headers).plainFlavour(t.arch) === t.kernel.flavour ? t.kernel.abi : t.kernelrelease,
    status: 'not built',
    modules: [],
  };
  const [result, current, build] = await Promise.all([
    readResult(root, t.name),
    targetFileSha256(root, t.name),
    readBuildRecord(out),
  ]);
  const latest = result?.targetFileSha256 === current ? result : undefined;
  if (result && !latest)
    cell.detail = `its last result (${result.outcome}, ${result.at}) was for an earlier target.json`;
  if (latest) cell.at = latest.at;
  if (latest?.outcome === 'failed') {
    cell.status = 'failed';
    cell.detail = latest.failure ? (latest.failure.firstError ?? latest.failure.message) : 'failed';
    if (latest.failure?.log) cell.log = latest.failure.log;
    else if (existsSync(`${out}.build.log`)) cell.log = relative(root, `${out}.build.log`);
    return cell;
  }
  if (latest) {
    cell.status = latest.outcome;
    if (latest.reason) cell.detail = latest.reason;
  } else if (build && !result) {
    // Built before results were recorded (or by hand): what the output folder says.
    cell.status = build.skipped ? 'skipped' : 'built';
    if (build.skipped) cell.detail = build.skipped;
  }
  if (build && cell.status !== 'not built') {
    cell.modules = build.outputs.map((m) => ({ file: m.file, sha256: m.sha256 }));
    if (existsSync(join(out, 'build.log'))) cell.log = relative(root, join(out, 'build.log'));
  }
  const boot = await json<BootResult>(join(bootOutputDir(root, t), 'result.json'));
  // A verdict counts only for the bytes it booted (a rebuilt module has not been tested yet).
  const same =
    (boot?.modules ?? []).length === cell.modules.length &&
    cell.modules.every((m) => boot?.modules?.some((b) => b.file === m.file && b.sha256 === m.sha256));
  if (boot && (same || boot.status === 'gap'))
    cell.boot = { status: boot.status, message: boot.message, ...(boot.console ? { console: boot.console } : {}) };
  return cell;
}
