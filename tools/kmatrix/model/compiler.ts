/**
 * Which gcc built a kernel, and how far the toolchain's gcc is from it. Kernels of other
 * distros are built with their vendor's gcc (Ubuntu's, Red Hat's, Amazon's); our toolchains
 * carry Debian's. A different major is refused or warned about by the plan; a different
 * minor release or vendor build of the same major is a warning recorded in the build.
 */
import { z } from 'zod';

export interface GccIdentity {
  /** CONFIG_CC_VERSION_TEXT as the kernel recorded it, or "CONFIG_GCC_VERSION=N" */
  text: string;
  major: string;
  /** upstream version, "12.2.0" */
  version?: string;
  /** the vendor's build, "Debian 12.2.0-14+deb12u1", "Red Hat 11.4.1-2", "Ubuntu 11.4.0-1ubuntu1~22.04" */
  vendor?: string;
}

/** gcc from a kernel .config's CONFIG_CC_VERSION_TEXT (or CONFIG_GCC_VERSION on kernels before 5.8). */
export function gccOfConfig(configText: string): GccIdentity | undefined {
  const line = configText.match(/^CONFIG_CC_VERSION_TEXT="([^"]*)"/m);
  if (!line) {
    // Older kernels (Debian's 5.10) record only CONFIG_GCC_VERSION=100201 (major × 10000 + minor × 100 + patch).
    const numeric = Number(configText.match(/^CONFIG_GCC_VERSION=(\d+)$/m)?.[1] ?? 0);
    if (numeric === 0) return undefined;
    const [major, minor, patch] = [Math.floor(numeric / 10000), Math.floor(numeric / 100) % 100, numeric % 100];
    return { text: `CONFIG_GCC_VERSION=${numeric}`, major: String(major), version: `${major}.${minor}.${patch}` };
  }
  const text = line[1]!;
  // "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110", "gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2)":
  // the version follows the first parenthesised part; the vendor's build is the one that is not "(GCC)".
  const version = text.match(/\)\s*(\d+\.\d+(?:\.\d+)?)/) ?? text.match(/(\d+\.\d+(?:\.\d+)?)/);
  if (!version) return undefined;
  const vendor = [...text.matchAll(/\(([^()]+)\)/g)].map((m) => m[1]!.trim()).find((v) => v !== 'GCC');
  return { text, major: version[1]!.split('.')[0]!, version: version[1]!, ...(vendor ? { vendor } : {}) };
}

/** The toolchain's gcc, from its lock's package list: Debian's gcc-<major> package version. */
export function gccOfToolchain(major: string, packages: Record<string, string> | undefined): GccIdentity {
  const debianVersion = packages?.[`gcc-${major}`];
  if (!debianVersion) return { text: `gcc-${major}`, major };
  const upstream = debianVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
  return { text: `gcc-${major} ${debianVersion}`, major, version: upstream, vendor: `Debian ${debianVersion}` };
}

export const compilerDifferenceSchema = z.enum(['none', 'revision', 'vendor', 'minor', 'major', 'unknown']);
export type CompilerDifference = z.infer<typeof compilerDifferenceSchema>;

/**
 * How the toolchain's gcc differs from the kernel's: `major` (another gcc), `minor` (another
 * release of the same major), `vendor` (the same release built by another vendor), `revision`
 * (the same vendor's release, another package revision), `none`, or `unknown` when the kernel's
 * .config does not say enough to compare.
 */
export function compilerDifference(kernel: GccIdentity, toolchain: GccIdentity): CompilerDifference {
  if (kernel.major !== toolchain.major) return 'major';
  if (!kernel.version || !toolchain.version) return 'unknown';
  if (kernel.version !== toolchain.version) return 'minor';
  if (!kernel.vendor || !toolchain.vendor) return kernel.vendor === toolchain.vendor ? 'none' : 'unknown';
  if (kernel.vendor === toolchain.vendor) return 'none';
  const vendorName = (v: string) => v.replace(/\s+\S*\d\S*$/, '');
  return vendorName(kernel.vendor) === vendorName(toolchain.vendor) ? 'revision' : 'vendor';
}

/** What build.json records of the compilers. */
export const compilerRecordSchema = z.object({
  kernel: z.string(),
  toolchain: z.string(),
  difference: compilerDifferenceSchema,
});
export type CompilerRecord = z.infer<typeof compilerRecordSchema>;
