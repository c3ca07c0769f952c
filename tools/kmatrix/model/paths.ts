/**
 * Where kmatrix writes what it writes, one definition each. Everything is under dist/ (never
 * committed); a target's own outputs are placed by its name (model/target-place.ts: outputDir).
 */
import { join } from 'node:path';

export const DIST = 'dist';

/** kmatrix's own records of runs, beside the targets' outputs. */
const records = (root: string, file: string) => join(root, DIST, 'kmatrix', file);

/** The last `nx run-many` of build-driver or test-driver: per target, what happened (`kmatrix report` reads it). */
export const lastRunFile = (root: string) => records(root, 'last-run.json');
/** What the matrix leaves out and why, as gen last saw it (`kmatrix report` reads it). */
export const genReportFile = (root: string) => records(root, 'gen-report.json');
/** Each target's last measured build time (`kmatrix shard` balances by it). */
export const timingsFile = (root: string) => records(root, 'timings.json');
/** Boot test verdicts, by target folder. */
export const bootDir = (root: string) => join(root, DIST, 'boot');
