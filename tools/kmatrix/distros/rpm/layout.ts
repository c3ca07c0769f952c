/**
 * Where an RPM distro's kernel-devel puts things: one self-contained tree at
 * /usr/src/kernels/<uname -r>/ (sources, generated headers, .config, Module.symvers and the host
 * programs fixdep, modpost and sign-file, built for the kernel's own architecture). The kernel
 * itself is vmlinuz in kernel-core (or kernel, where there is no -core split).
 */
import type { HeaderPackage, ListedPackage } from '../../model/kernel-list.ts';
import type { Arch } from '../../model/names.ts';
import type { SigningTool } from '../family.ts';
import type { MountRule } from '../../model/mount-rule.ts';
import { foreignHostToolsEnv } from '../../model/host-tools.ts';

/** kernel-devel (kernel6.12-devel, kernel-64k-devel, …): the whole header tree in one package. */
export const ROLES = ['devel'] as const;

export const kernelDir = (kernelrelease: string) => `/usr/src/kernels/${kernelrelease}`;

/** kernel-devel's one tree, at /usr/src/kernels/<uname -r>. */
export const HEADER_MOUNT_RULES: readonly MountRule[] = [{ from: 'usr/src/kernels', to: '/usr/src/kernels' }];

/**
 * kernel-devel's host programs are built for the kernel's architecture: an aarch64 kernel's run on
 * an x86_64 runner under qemu-user (compile/foreign-host-tools.ts); no other pairing can run them.
 */
export function missingHostTools(headers: ListedPackage[], hostArch: Arch, kernelArch: Arch): string | undefined {
  if (!headers.some((h) => h.role === 'devel')) return 'the kernel list names no kernel-devel package';
  return foreignHostToolsEnv(hostArch, kernelArch)
    ? undefined
    : `${headers.find((h) => h.role === 'devel')!.name}'s host programs (fixdep, modpost) are ${kernelArch} binaries and the runner is ${hostArch}: build ${kernelArch} RPM kernels on a ${kernelArch} runner ("runner": "${kernelArch}")`;
}

/** What the build needs to run kernel-devel's host programs on this runner. */
export const hostToolsEnv = (_headers: ListedPackage[], hostArch: Arch, kernelArch: Arch) =>
  foreignHostToolsEnv(hostArch, kernelArch) ?? {};

export function signingTool(headers: HeaderPackage[], host: Arch, kernelArch: Arch): SigningTool {
  const devel = headers.find((h) => h.role === 'devel');
  if (!devel) return { why: 'no kernel-devel package to sign with' };
  return kernelArch === host
    ? { package: devel, pathPattern: '*/scripts/sign-file' }
    : { why: `${devel.name}'s sign-file is a ${kernelArch} program and this machine is ${host}` };
}

export const configPackage = <P extends ListedPackage>(headers: P[]): P | undefined =>
  headers.find((h) => h.role === 'devel');

/**
 * Fedora since 2018, EL8+ and Amazon Linux 2023 ship the kernel as /lib/modules/<r>/vmlinuz (the
 * install scripts copy it to /boot); EL7 and Amazon Linux 2 put it in /boot.
 */
export const kernelImageFile = (kernelrelease: string) =>
  /\.(el7|amzn2)\./.test(kernelrelease) ? `boot/vmlinuz-${kernelrelease}` : `lib/modules/${kernelrelease}/vmlinuz`;
