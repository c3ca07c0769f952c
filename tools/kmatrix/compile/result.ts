/**
 * Each target's latest build result, whichever run produced it: built, restored from a cache,
 * failed (whose fault, the first error, the log) or skipped. One small file beside the target's
 * output folder (dist/targets/<driver>/<distro>/<kernelrelease>/<arch>.result.json), replaced by
 * every build of that target and never one per run — so after building one subset and then
 * another, `kmatrix report` still shows every target's own last result, and "failed" counts what
 * is failing now. It names the target.json it was for, so a result of an older matrix is not
 * mistaken for the current one.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { KmatrixError, type Stage } from '../core/errors.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { readOwnRecord } from '../core/json-file.ts';
import { nameParts, outputDir, targetDir } from '../model/target-place.ts';

export const outcomes = ['built', 'cached', 'failed', 'skipped'] as const;
export type Outcome = (typeof outcomes)[number];

const failureSchema = z.object({
  stage: z.string() as z.ZodType<Stage>,
  kind: z.enum(['compile', 'infrastructure', 'input']),
  message: z.string(),
  /** First compiler error line, for compile errors */
  firstError: z.string().optional(),
  /** Full log, relative to the workspace */
  log: z.string().optional(),
});
export type FailureRecord = z.infer<typeof failureSchema>;

export const targetResultSchema = z.object({
  outcome: z.enum(outcomes),
  /** ISO time of the result */
  at: z.string(),
  /** SHA256 of the bytes of the target.json file the result is for */
  targetFileSha256: z.string(),
  failure: failureSchema.optional(),
  /** Why a skipped target was skipped */
  reason: z.string().optional(),
  /** The Nx task hash it was recorded for, when a run summary recorded it (a cache restore of the same hash changes nothing) */
  taskHash: z.string().optional(),
});
export type TargetResult = z.infer<typeof targetResultSchema>;

/** A build that ran and failed, with where its full log is. */
export class BuildFailedError extends KmatrixError {
  readonly logFile: string;
  constructor(message: string, options: ConstructorParameters<typeof KmatrixError>[1] & { logFile: string }) {
    super(message, options);
    this.logFile = options.logFile;
  }
}

export function resultFile(root: string, projectName: string): string {
  return `${outputDir(root, nameParts(projectName))}.result.json`;
}

/** SHA256 of a target's target.json file as it is on disk now ('' when it cannot be read). */
export async function targetFileSha256(root: string, projectName: string): Promise<string> {
  let text: Buffer;
  try {
    text = readFileSync(join(root, targetDir(nameParts(projectName)), 'target.json')); // small, read by the thousand: see readOwnRecord
  } catch {
    return '';
  }
  return createHash('sha256').update(text).digest('hex');
}

export function failureKind(stage: Stage): FailureRecord['kind'] {
  if (stage === 'build') return 'compile';
  if (stage === 'headers' || stage === 'docker' || stage === 'toolchain' || stage === 'cache') return 'infrastructure';
  return 'input';
}

/** Whose fault a failure is, its first error line and where its log is. */
export function failureOf(root: string, error: unknown): FailureRecord {
  const k = error instanceof KmatrixError ? error : undefined;
  const failure: FailureRecord = {
    stage: k?.stage ?? 'build',
    kind: k ? failureKind(k.stage) : 'infrastructure',
    message: (error as Error).message,
  };
  if (k?.stage === 'build') {
    const first = k.problems.find((p) => /\berror\b/.test(p)) ?? k.problems[0];
    if (first) failure.firstError = first;
  }
  if (error instanceof BuildFailedError) failure.log = relative(root, error.logFile);
  return failure;
}

/** `fileSha256`: of the target.json the build read (default: the file as it is now). */
export async function recordResult(
  root: string,
  projectName: string,
  result: Omit<TargetResult, 'at' | 'targetFileSha256'>,
  fileSha256?: string,
): Promise<void> {
  const full: TargetResult = {
    ...result,
    at: new Date().toISOString(),
    targetFileSha256: fileSha256 ?? (await targetFileSha256(root, projectName)),
  };
  await writeFileAtomic(resultFile(root, projectName), `${JSON.stringify(full, null, 2)}\n`);
}

export function readResult(root: string, projectName: string): Promise<TargetResult | undefined> {
  return readOwnRecord(targetResultSchema, resultFile(root, projectName));
}
