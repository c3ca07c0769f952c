/**
 * Where a target lives: its folder under targets/, its outputs under dist/, and its project name
 * (both ways). Apart from target.json's schemas (model/target.ts), so that what only
 * places a target — the Nx plugin on every command, the run summary — does not load and build
 * them (profiled: the schema modules are a good part of the plugin's load time).
 */
import { join } from 'node:path';
import { DIST } from './paths.ts';
import type { Target } from './target.ts';

/** What names a target's folder. */
export type TargetPlace = Pick<Target, 'distro' | 'kernelrelease' | 'arch'> & { driver: { name: string } };

/** targets/<driver>/<distro>/<kernelrelease>/<arch>: one folder per target so Nx sees exactly what changed. */
export function targetDir(t: TargetPlace): string {
  return join('targets', t.driver.name, t.distro, t.kernelrelease, t.arch);
}

/** Where a target's outputs go (dist/<targetDir>); Nx caches and restores exactly this folder. */
export function outputDir(root: string, t: TargetPlace): string {
  return join(root, DIST, targetDir(t));
}

/** A target's project name, readable and unique: `<driver>--<distro>--<kernelrelease>--<arch>`. */
export function projectName(t: TargetPlace): string {
  return `${t.driver.name}--${t.distro}--${t.kernelrelease}--${t.arch}`;
}

/** The target fields a project name (projectName's inverse) encodes. */
export function nameParts(name: string): TargetPlace {
  const [driver, distro, kernelrelease, arch] = name.split('--') as [string, string, string, Target['arch']];
  return { driver: { name: driver }, distro, kernelrelease, arch };
}
