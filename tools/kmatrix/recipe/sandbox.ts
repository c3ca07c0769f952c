/**
 * What a build container may do. The driver's Makefile and its dkms.conf are code from outside:
 * they run as an unprivileged user (a fixed one when kmatrix itself runs as root), with no
 * capabilities, no privilege gain through setuid files, bounded processes, memory and CPU, a
 * read-only root filesystem with a small tmpfs for scratch, and no network. A recipe states the
 * sandbox (SANDBOX); the limits are this runner's resources, settable from the environment.
 */
import { lchown, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { KmatrixError } from '../core/errors.ts';
import type { BuildRecipe } from '../model/recipe.ts';

/** The uid:gid builds run as when kmatrix runs as root (distroless's "nonroot"): never uid 0. */
export const SANDBOX_UID = 65532;

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

const Bytes = z
  .string()
  .regex(/^[0-9]+[kmg]?$/i, 'a size like 4g, 512m or a number of bytes')
  .transform((s) => Number.parseInt(s, 10) * UNITS[s.replace(/^[0-9]+/, '').toLowerCase()]!);

/** The limits, each settable from the environment (read once per build, at its edge). */
const LimitsFromEnv = z.object({
  KMATRIX_BUILD_MEMORY: Bytes.prefault('4g'),
  KMATRIX_BUILD_PIDS: z.coerce.number().int().min(64).default(4096),
  KMATRIX_BUILD_CPUS: z.coerce.number().positive().optional(),
  KMATRIX_BUILD_TMPFS: Bytes.prefault('1g'),
});

export interface SandboxLimits {
  memoryBytes: number;
  pids: number;
  /** CPUs the container may use; by default the build's share of the machine. */
  cpus: number;
  tmpfsBytes: number;
}

export function sandboxLimits(cpuShare: number, env: NodeJS.ProcessEnv = process.env): SandboxLimits {
  const parsed = LimitsFromEnv.safeParse(env);
  if (!parsed.success) {
    throw new KmatrixError('the build sandbox limits in the environment are not valid', {
      stage: 'build',
      problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      remedy:
        'set KMATRIX_BUILD_MEMORY and KMATRIX_BUILD_TMPFS to sizes (4g, 512m), KMATRIX_BUILD_PIDS to a count ≥ 64, KMATRIX_BUILD_CPUS to a number of CPUs',
    });
  }
  const e = parsed.data;
  return {
    memoryBytes: e.KMATRIX_BUILD_MEMORY,
    pids: e.KMATRIX_BUILD_PIDS,
    cpus: e.KMATRIX_BUILD_CPUS ?? Math.max(1, cpuShare),
    tmpfsBytes: e.KMATRIX_BUILD_TMPFS,
  };
}

/** The user a build runs as: the invoking user, or SANDBOX_UID when that is root. */
export function sandboxUser(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? SANDBOX_UID;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? uid };
  return { uid: SANDBOX_UID, gid: SANDBOX_UID };
}

export function userSpec(): string {
  const { uid, gid } = sandboxUser();
  return `${uid}:${gid}`;
}

const TMPFS_OPTIONS = 'rw,nosuid,nodev';

/** The HostConfig fields of a recipe's sandbox with this runner's limits, for the Docker Engine API. */
export function sandboxHostConfig(sandbox: BuildRecipe['sandbox'], limits: SandboxLimits) {
  return {
    NetworkMode: sandbox.network,
    CapDrop: sandbox.capDrop,
    SecurityOpt: sandbox.noNewPrivileges ? ['no-new-privileges'] : [],
    ReadonlyRootfs: sandbox.readOnlyRoot,
    Tmpfs: Object.fromEntries(sandbox.tmpfs.map((p) => [p, `${TMPFS_OPTIONS},size=${limits.tmpfsBytes}`])),
    PidsLimit: limits.pids,
    Memory: limits.memoryBytes,
    // Equal to Memory: no swap on top, so the limit is the limit.
    MemorySwap: limits.memoryBytes,
    NanoCpus: Math.round(limits.cpus * 1e9),
  };
}

/** The sandbox builds run in (and `kmatrix driver import`'s evaluation of a dkms.conf). */
export const SANDBOX: BuildRecipe['sandbox'] = {
  network: 'none',
  capDrop: ['ALL'],
  noNewPrivileges: true,
  readOnlyRoot: true,
  tmpfs: ['/tmp'],
};

/**
 * A folder the build writes (the copy of the driver's sources) handed to the sandbox user. Only
 * needed when kmatrix runs as root; otherwise the build's user already owns it.
 */
export async function handToSandbox(dir: string): Promise<void> {
  const { uid, gid } = sandboxUser();
  if (uid === (process.getuid?.() ?? uid)) return;
  await lchown(dir, uid, gid);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    await lchown(join(e.parentPath, e.name), uid, gid);
}
