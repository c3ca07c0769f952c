/**
 * Which host programs a runner can run. Ubuntu's and the RPM distros' header packages carry their
 * host programs (fixdep, modpost) built for the kernel's own arch; an x86_64 runner runs aarch64
 * ones under Debian's qemu-user-static: binfmt_misc hands each to qemu-aarch64 (registered with
 * the F flag, so it works inside the build container with nothing mounted), and QEMU_LD_PREFIX
 * points it at the toolchain's aarch64 libc (libc6-arm64-cross, which the cross compiler brings).
 * compile/foreign-host-tools.ts checks the machine can before a build starts.
 *
 * Why not rebuild the host programs from the sources the headers ship: modpost needs the kernel's
 * generated device-table offsets and differs per series; running the distro's own binaries keeps
 * the build what the distro's own build would be.
 */
import { gnuTriplet } from './toolchain.ts';
import type { Arch } from './names.ts';

/** The environment a build needs to run `kernelArch` host programs on a `hostArch` runner, or undefined if it cannot. */
export function foreignHostToolsEnv(hostArch: Arch, kernelArch: Arch): Record<string, string> | undefined {
  if (hostArch === kernelArch) return {};
  if (hostArch === 'x86_64' && kernelArch === 'aarch64') return { QEMU_LD_PREFIX: `/usr/${gnuTriplet.aarch64}` };
  return undefined;
}
