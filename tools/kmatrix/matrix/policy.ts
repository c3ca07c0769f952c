/**
 * support-matrix.json: the reviewed policy of what we support. Everything `gen` produces follows
 * from this file and a kernel list, so it is validated strictly (typos fail) before anything is written.
 */
import { z } from 'zod';
import { readJsonFile } from '../files/json.ts';
import { arch, identifier, kernelRelease, repoPath } from './names.ts';

const driver = z
  .object({
    path: repoPath.describe('Folder with the Kbuild/Makefile, relative to the repository root'),
    modules: z.array(identifier).min(1).describe('Module names the build must produce, without .ko'),
  })
  .strict();

const distro = z
  .object({
    toolchain: identifier.describe('Folder under toolchains/ that builds for this distro'),
  })
  .strict();

/** A shell-style glob over kernel releases: only `*` and `?` are special. */
const releasePattern = z
  .string()
  .regex(/^[A-Za-z0-9.+~_*?-]+$/, 'must be a kernel release glob: letters, digits, ".", "+", "~", "_", "-", "*", "?"');

const exclusion = z
  .object({
    kernelrelease: kernelRelease,
    reason: z.string().min(1, 'say why the kernel is excluded'),
  })
  .strict();

const rule = z
  .object({
    driver: identifier,
    distro: identifier,
    archs: z.array(arch).min(1),
    flavours: z.array(identifier).min(1).describe('Debian flavours, e.g. amd64, cloud-amd64, rt-amd64'),
    kernels: z.array(releasePattern).min(1).describe('Kernel ABI globs, e.g. "6.1.0-*", "6.12.*"'),
    latest: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Keep only the newest N kernel ABIs that match each pattern'),
    exclude: z.array(exclusion).default([]),
  })
  .strict();

export const policySchema = z
  .object({
    $schema: z.string().optional(),
    drivers: z.record(identifier, driver),
    distros: z.record(identifier, distro),
    matrix: z.array(rule).min(1),
  })
  .strict()
  .superRefine((policy, ctx) => {
    // Named cross-field rules: each problem names its JSON path and what to do.
    policy.matrix.forEach((r, i) => {
      if (!(r.driver in policy.drivers)) {
        ctx.addIssue({
          code: 'custom',
          path: ['matrix', i, 'driver'],
          message: `unknown driver "${r.driver}". Declare it under "drivers" (known: ${Object.keys(policy.drivers).join(', ') || 'none'})`,
        });
      }
      if (!(r.distro in policy.distros)) {
        ctx.addIssue({
          code: 'custom',
          path: ['matrix', i, 'distro'],
          message: `unknown distro "${r.distro}". Declare it under "distros" (known: ${Object.keys(policy.distros).join(', ') || 'none'})`,
        });
      }
    });
  });

export type Policy = z.infer<typeof policySchema>;
export type MatrixRule = Policy['matrix'][number];

export const POLICY_FILE = 'support-matrix.json';

export async function loadPolicy(file: string): Promise<Policy> {
  return readJsonFile(policySchema, file, {
    stage: 'policy',
    what: 'support-matrix policy',
    remedy: `fix the fields listed above in ${file}; nothing was written`,
  });
}

/** Glob match for kernel releases (`*` any run, `?` one character); the whole string must match. */
export function matchesRelease(pattern: string, release: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+~]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(release);
}
