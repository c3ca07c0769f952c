/**
 * Recipes: everything that reaches a build container or a boot test's guest, rendered as data
 * (tools/kmatrix/recipe/ renders and runs them). A target.json carries both, so a task's cache key
 * is what runs — not the source code of kmatrix that rendered it — and `git diff targets/` shows
 * every change of what runs.
 */
import { z } from 'zod';
import { containerPath, mountRuleSchema } from './mount-rule.ts';
import { repoPath, sha256Hex } from './names.ts';

const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>');
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/);

/** A header package's tree (by its .deb/.rpm's SHA256), its folders mounted read-only by a rule. */
const packageMount = z.object({ kind: z.literal('package'), sha256: sha256Hex, ...mountRuleSchema.shape }).strict();
/** A copy of the driver's folder (without the excluded files), writable: the build writes into it. */
const sourceMount = z
  .object({ kind: z.literal('source'), path: repoPath, exclude: z.array(z.string()), to: containerPath })
  .strict();
/** A read-only folder of symbolic links (name → target), e.g. /lib/modules/<release>/build. */
const linksMount = z
  .object({ kind: z.literal('links'), to: containerPath, links: z.record(z.string(), containerPath) })
  .strict();
export const recipeMount = z.discriminatedUnion('kind', [packageMount, sourceMount, linksMount]);
export type RecipeMount = z.infer<typeof recipeMount>;

export const buildRecipeSchema = z
  .object({
    /** The toolchain image by digest (its repository says where to pull it from, not what it is). */
    image: digest,
    mounts: z.array(recipeMount),
    /** "unprivileged": the invoking user, or uid 65532 when kmatrix runs as root (never uid 0). */
    user: z.literal('unprivileged'),
    workdir: containerPath,
    env: z.record(envName, z.string()),
    /** The command; `@script:<name>` stands for that script's text. */
    argv: z.array(z.string()).min(1),
    /** What runs the command (the watchdog), argv prepended. */
    wrapper: z.array(z.string()),
    /** SHA256 of each script the argv or the wrapper names. */
    scripts: z.record(z.string(), sha256Hex),
    /** The variable that passes the build's CPU share (make -j) into the container, if the command reads one. */
    jobsEnv: envName.optional(),
    sandbox: z
      .object({
        network: z.string(),
        capDrop: z.array(z.string()),
        noNewPrivileges: z.boolean(),
        readOnlyRoot: z.boolean(),
        tmpfs: z.array(containerPath),
      })
      .strict(),
  })
  .strict();
export type BuildRecipe = z.infer<typeof buildRecipeSchema>;

export const bootRecipeSchema = z
  .object({
    /** The kernel QEMU boots: its package by SHA256 and the file in it; absent when the target has no image (a gap). */
    kernel: z.object({ sha256: sha256Hex, file: z.string() }).strict().optional(),
    /** The guest's static busybox package, by SHA256 (from the guest lock). */
    busybox: sha256Hex,
    /** SHA256 of the guest's /init as rendered for a module named `@module@`. */
    init: sha256Hex,
    /** The driver's smoke test, run in the guest (its bytes are a task input of their own). */
    smokeTest: z.string().optional(),
    qemu: z
      .object({
        binary: z.string(),
        /** `@accel` stands for one of `accel`'s argument lists, `@kernel` and `@initrd` for the files. */
        argv: z.array(z.string()),
        accel: z.object({ tcg: z.array(z.string()), kvm: z.array(z.string()).optional() }).strict(),
      })
      .strict(),
  })
  .strict();
export type BootRecipe = z.infer<typeof bootRecipeSchema>;
