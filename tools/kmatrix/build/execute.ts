/**
 * Build one target from its target.json, end to end: the single entry point behind both the Nx
 * `build-driver` executor and `kmatrix build`, so the two can never drift apart.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { connectDocker } from '../docker/engine.ts';
import { KmatrixError } from '../errors.ts';
import { defaultStoreDir, HeaderStore } from '../headers/store.ts';
import { loadTarget, outputDir, type Target } from '../matrix/target.ts';
import { loadToolchain, requireLock } from '../toolchain/spec.ts';
import { buildTarget, type BuildResult } from './run.ts';

export { outputDir };

/** Accepts a project name (driver--distro--kernelrelease--arch) or a path to a target.json. */
export function targetFileFor(root: string, ref: string): string {
  if (ref.endsWith('target.json')) return ref;
  // driver/distro/kernelrelease/arch is accepted too
  const parts = ref.includes('/') ? ref.split('/') : ref.split('--');
  if (parts.length !== 4 || parts.some((p) => !p || p.includes('/') || p === '..')) {
    throw new KmatrixError(`"${ref}" is neither a project name (driver--distro--kernelrelease--arch) nor a target.json path`, {
      stage: 'usage',
      remedy: 'list the projects with `npx nx show projects`',
    });
  }
  const [driver, distro, kernelrelease, arch] = parts as [string, string, string, string];
  const file = join(root, 'targets', driver, distro, kernelrelease, arch, 'target.json');
  if (!existsSync(file)) {
    throw new KmatrixError(`no target ${ref} (looked for ${file})`, { stage: 'target', remedy: 'run `npx kmatrix gen`, or list the projects with `npx nx show projects`' });
  }
  return file;
}

/** What any build of a target needs: the target, its toolchain's repository, the header store, Docker. */
export async function openBuild(root: string, file: string, log: (line: string) => void) {
  const target = await loadTarget(file);
  const lock = requireLock(await loadToolchain(root, target.toolchain.name));
  return { target, repository: lock.repository, store: new HeaderStore(defaultStoreDir(), log), docker: await connectDocker() };
}

export async function buildFromTargetFile(
  root: string,
  file: string,
  options: { outDir?: string; log: (line: string) => void },
): Promise<{ target: Target; outDir: string; result: BuildResult }> {
  const opened = await openBuild(root, file, options.log);
  const outDir = options.outDir ?? outputDir(root, opened.target);
  const result = await buildTarget({ root, ...opened, outDir, log: options.log, timeoutMs: 20 * 60_000 });
  return { target: opened.target, outDir, result };
}
