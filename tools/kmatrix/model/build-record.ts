/**
 * build.json: what a build read and what it produced, written beside the modules by the build and
 * read by everything after it (boot, report, cache inspection, publish). One schema for all.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { readOwnRecord } from '../core/json-file.ts';

export const BUILD_RECORD = 'build.json';

export const buildRecordSchema = z.object({
  target: z.string(),
  inputs: z.object({
    targetJsonSha256: z.string(),
    toolchain: z.object({ name: z.string(), image: z.string() }),
    headers: z.array(z.object({ name: z.string(), version: z.string(), sha256: z.string() })),
    driverSources: z.record(z.string(), z.string()),
    make: z.array(z.string()),
    env: z.record(z.string(), z.string()),
  }),
  /** The modules in the order the build names them (a DKMS driver's: its dkms.conf's order) */
  outputs: z.array(z.object({ file: z.string(), sha256: z.string(), size: z.number(), vermagic: z.string() })),
  /** Why the driver does not build for this kernel (DKMS BUILD_EXCLUSIVE_*), when it does not */
  skipped: z.string().optional(),
});
export type BuildRecord = z.infer<typeof buildRecordSchema>;

/** The build record in an output folder, or undefined when there is none (or it is not ours). */
export function readBuildRecord(outDir: string): Promise<BuildRecord | undefined> {
  return readOwnRecord(buildRecordSchema, join(outDir, BUILD_RECORD));
}
