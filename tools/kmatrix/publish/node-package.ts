/**
 * What an installable package of a target holds, whatever its format: the published modules (the
 * signed bytes when publishing signs, under the module's own name so modprobe finds them) under
 * /lib/modules/<uname -r>/updates/, where depmod ranks them above the kernel's own, and depmod in
 * the install and removal scripts. Named the way each family names such packages: DKMS's
 * `dkms mkbmdeb` (`<driver>-modules-<uname -r>`) and akmods' `kmod-<driver>-<uname -r>`.
 *
 * The package's version is `0` with the build id as its release: packages of one target are told
 * apart by the bytes they carry, and the same build always makes the same package, byte for byte
 * (fixed times, owners and order), so publishing again stores nothing new.
 */
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';
import type { Arch } from '../model/names.ts';

export type PackageFormat = 'deb' | 'rpm';
export const PACKAGE_FORMATS: readonly PackageFormat[] = ['deb', 'rpm'];

export interface PackageInput {
  driver: string;
  kernelrelease: string;
  arch: Arch;
  /** The first 12 hex digits of the build id. */
  build: string;
  /** Module file name → bytes. */
  modules: Map<string, Buffer>;
}

export interface BuiltPackage {
  format: PackageFormat;
  /** The package's name as the package manager knows it. */
  name: string;
  /** Its file name. */
  file: string;
  body: Buffer;
}

/** Every timestamp in a package: a fixed instant, so the same build gives the same bytes. */
export const PACKAGE_EPOCH = 1_700_000_000;

/** Where the modules go on the node. */
export const modulesDir = (kernelrelease: string) => `/lib/modules/${kernelrelease}/updates`;

export const description = (p: PackageInput) =>
  `${p.driver} kernel modules for Linux ${p.kernelrelease} (${[...p.modules.keys()].join(', ')})`;

/** The packaging tool this machine needs for a format, or a clear error naming what to install. */
export async function requireTool(tool: string, aptPackage: string): Promise<void> {
  const found = await execa(tool, ['--version'], { reject: false });
  if (found.exitCode === 0) return;
  throw new KmatrixError(`publishing packages needs ${tool}, which this machine does not have`, {
    stage: 'publish',
    remedy: `install it (Debian: apt-get install ${aptPackage}), or leave its format out of --packages`,
  });
}
