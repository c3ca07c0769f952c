/**
 * Build one target from its target.json, end to end: the single entry point behind both the Nx
 * `build-driver` executor and `kmatrix build`, so the two can never drift apart.
 */
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { connectDocker } from '../core/docker.ts';
import { KmatrixError } from '../core/errors.ts';
import { defaultStoreDir, HeaderStore } from '../packages/store.ts';
import { loadTarget, type Target } from '../model/target.ts';
import { nameParts, outputDir, targetDir } from '../model/target-place.ts';
import { failureOf, recordResult, targetFileSha256 } from './result.ts';
import { loadToolchain, requireLock } from '../model/toolchain.ts';
import { buildTarget, type BuildResult } from './run.ts';

export { outputDir };

/** Accepts a project name (driver--distro--kernelrelease--arch) or a path to a target.json. */
/** Whether a TARGET argument is a path to a target.json (else a project name or driver/distro/kernelrelease/arch). */
export const isTargetFilePath = (ref: string): boolean => ref.endsWith('target.json');

export function targetFileFor(root: string, ref: string): string {
  if (isTargetFilePath(ref)) return ref;
  // driver/distro/kernelrelease/arch is accepted too
  const parts = ref.includes('/') ? ref.split('/') : ref.split('--');
  if (parts.length !== 4 || parts.some((p) => !p || p.includes('/') || p === '..')) {
    throw new KmatrixError(
      `"${ref}" is neither a project name (driver--distro--kernelrelease--arch) nor a target.json path`,
      {
        stage: 'usage',
        remedy: 'list the projects with `npx nx show projects`',
      },
    );
  }
  const [driver, distro, kernelrelease, arch] = parts as [string, string, string, string];
  const file = join(root, 'targets', driver, distro, kernelrelease, arch, 'target.json');
  if (!existsSync(file)) {
    throw new KmatrixError(`no target ${ref} (looked for ${file})`, {
      stage: 'target',
      remedy: 'run `npx kmatrix gen`, or list the projects with `npx nx show projects`',
    });
  }
  return file;
}

/** What any build of a target needs: the target, its toolchain's repository, the header store, Docker. */
export async function openBuild(root: string, file: string, log: (line: string) => void) {
  const target = await loadTarget(file);
  const lock = requireLock(await loadToolchain(root, target.toolchain.name));
  // The lock's package list describes the image it pins: after a re-pin without `gen`, the
  // target still runs its recipe's (older) image, whose packages the lock no longer lists.
  const packages = lock.digest === target.recipe.image ? lock.packages : undefined;
  return {
    target,
    repository: lock.repository,
    ...(packages ? { toolchainPackages: packages } : {}),
    store: new HeaderStore(defaultStoreDir(), log),
    docker: await connectDocker(),
  };
}

/** make -j for one build when `parallel` builds share this machine's CPUs: at least 1. */
export function cpuShare(parallel = 1): number {
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, parallel)));
}

export async function buildFromTargetFile(
  root: string,
  file: string,
  options: { outDir?: string; log: (line: string) => void; jobs?: number },
): Promise<{ target: Target; outDir: string; result: BuildResult }> {
  const opened = await openBuild(root, file, options.log);
  const outDir = options.outDir ?? outputDir(root, opened.target);
  const result = await buildTarget({
    root,
    ...opened,
    outDir,
    log: options.log,
    timeoutMs: 20 * 60_000,
    jobs: options.jobs ?? cpuShare(),
  });
  return { target: opened.target, outDir, result };
}

/**
 * A build of the target's own output folder, whose result (built, skipped, or failed with why)
 * becomes the target's latest result (compile/result.ts): what the Nx task and `kmatrix build` run.
 */
export async function buildAndRecord(
  root: string,
  projectName: string,
  options: { log: (line: string) => void; jobs?: number },
): Promise<{ target: Target; outDir: string; result: BuildResult }> {
  // The result is for the bytes this build reads, even if gen rewrites the file meanwhile.
  const fileSha256 = await targetFileSha256(root, projectName);
  try {
    const built = await buildFromTargetFile(
      root,
      join(root, targetDir(nameParts(projectName)), 'target.json'),
      options,
    );
    const { skipped } = built.result;
    await recordResult(
      root,
      projectName,
      skipped ? { outcome: 'skipped', reason: skipped } : { outcome: 'built' },
      fileSha256,
    );
    return built;
  } catch (error) {
    // The build's own error is what the user must see, even if the record cannot be written.
    await recordResult(root, projectName, { outcome: 'failed', failure: failureOf(root, error) }, fileSha256).catch(
      () => {},
    );
    throw error;
  }
}
