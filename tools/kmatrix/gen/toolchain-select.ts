/**
 * Which toolchain builds a kernel: one that runs on the policy's runner arch, targets the kernel's
 * arch, and whose gcc major is the one the kernel was built with (kmatrix.gcc, from the header
 * package's Depends or the kernel's .config). Toolchains are Debian-based images, one per gcc major
 * (driverkit's approach), so any distro's kernel may use any distro's toolchain: the distro's
 * default first, then one of its own, then any other. Pure: gen calls it with everything loaded.
 */
import type { Policy } from '../model/policy.ts';
import type { Arch } from '../model/names.ts';
import type { Toolchain, ToolchainLock } from '../model/toolchain.ts';

export interface LoadedToolchain {
  toolchain: Toolchain;
  lock: ToolchainLock;
}

/** No toolchain has the kernel's gcc major: the distro's default builds it (reported, counted per distro). */
export interface Mismatch {
  gcc: string;
  toolchain: string;
  toolchainGcc: string;
}

export type Selection = { ok: true; chosen: LoadedToolchain; mismatch?: Mismatch } | { ok: false; problem: string };

export function selectToolchain(
  policy: Policy,
  distroName: string,
  arch: Arch,
  gcc: string | undefined,
  toolchains: Map<string, LoadedToolchain>,
): Selection {
  const distro = policy.distros[distroName]!;
  const usable = (t: LoadedToolchain) =>
    t.toolchain.spec.hostArch === distro.runner && t.toolchain.spec.targetArchs.includes(arch);
  const fallback = toolchains.get(distro.toolchain);
  if (!fallback) return { ok: false, problem: `toolchain "${distro.toolchain}" of distro ${distroName} is not loaded` };
  if (!usable(fallback)) {
    const s = fallback.toolchain.spec;
    return {
      ok: false,
      problem: `toolchain "${distro.toolchain}" cannot build ${distroName} ${arch} on a ${distro.runner} runner (it runs on ${s.hostArch}, builds ${s.targetArchs.join(', ')})`,
    };
  }
  if (!gcc || fallback.toolchain.spec.gcc === gcc) return { ok: true, chosen: fallback };
  const matching = [...toolchains.values()].filter((t) => usable(t) && t.toolchain.spec.gcc === gcc);
  const match = matching.find((t) => t.toolchain.spec.distro === distroName) ?? matching[0];
  if (match) return { ok: true, chosen: match };
  if (distro.strictCompiler)
    return {
      ok: false,
      problem: `no toolchain for gcc ${gcc}: built with gcc-${gcc}, and no toolchain for ${arch} has it; add a toolchain with "gcc": "${gcc}" or turn off strictCompiler`,
    };
  return {
    ok: true,
    chosen: fallback,
    mismatch: { gcc, toolchain: distro.toolchain, toolchainGcc: fallback.toolchain.spec.gcc },
  };
}
