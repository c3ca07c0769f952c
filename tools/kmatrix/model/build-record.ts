/**
 * build.json: what a build read and what it produced, written beside the modules by the build and
 * read by everything after it (boot, report, cache inspection, publish). One schema for all.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { readOwnRecord } from '../core/json-file.ts';
import { compilerRecordSchema } from './compiler.ts';
import { buildRecipeSchema } from './recipe.ts';

export const BUILD_RECORD = 'build.json';

const builderSchema = z.object({ id: z.string(), invocationId: z.string().optional() });
export type Builder = z.infer<typeof builderSchema>;

export const buildRecordSchema = z.object({
  target: z.string(),
  inputs: z.object({
    targetJsonSha256: z.string(),
    /** packages: every package of the image and its version (from the lock), when the lock lists them. */
    toolchain: z.object({ name: z.string(), image: z.string(), packages: z.record(z.string(), z.string()).optional() }),
    headers: z.array(z.object({ name: z.string(), version: z.string(), sha256: z.string() })),
    driverSources: z.record(z.string(), z.string()),
    make: z.array(z.string()),
    env: z.record(z.string(), z.string()),
    /** The recipe the build ran and the RECIPE_VERSION of the code that ran it (absent in records of older builds). */
    recipe: buildRecipeSchema.optional(),
    recipeVersion: z.number().optional(),
  }),
  /** The modules in the order the build names them (a DKMS driver's: its dkms.conf's order) */
  outputs: z.array(z.object({ file: z.string(), sha256: z.string(), size: z.number(), vermagic: z.string() })),
  /** The kernel's gcc and the toolchain's, and how they differ (absent when the .config names none) */
  compiler: compilerRecordSchema.optional(),
  /** Why the driver does not build for this kernel (DKMS BUILD_EXCLUSIVE_*), when it does not */
  skipped: z.string().optional(),
  /** Who ran the build (its provenance's runDetails.builder); absent in records of older builds. */
  builder: builderSchema.optional(),
});
export type BuildRecord = z.infer<typeof buildRecordSchema>;

/** The build record in an output folder, or undefined when there is none (or it is not ours). */
export function readBuildRecord(outDir: string): Promise<BuildRecord | undefined> {
  return readOwnRecord(buildRecordSchema, join(outDir, BUILD_RECORD));
}

/** Who built it: the CI workflow run when there is one, else this machine. */
export function builderFromEnv(env: NodeJS.ProcessEnv = process.env): Builder {
  if (env.KMATRIX_BUILDER_ID) return { id: env.KMATRIX_BUILDER_ID };
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  if (env.GITHUB_REPOSITORY && env.GITHUB_WORKFLOW_REF) {
    return {
      id: `${server}/${env.GITHUB_WORKFLOW_REF}`,
      ...(env.GITHUB_RUN_ID
        ? { invocationId: `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}` }
        : {}),
    };
  }
  return { id: `kmatrix://${env.HOSTNAME ?? 'localhost'}` };
}
