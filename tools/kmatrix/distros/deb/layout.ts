/**
 * Where Debian's and Ubuntu's header packages put things, and what each is for.
 *
 * Debian: three packages — its flavour's tree (linux-headers-<abi>-<flavour>, whose one-line
 * Makefile includes the shared tree by absolute path), the shared `-common` tree, and
 * linux-kbuild-<version> (the host programs: fixdep, modpost, sign-file), listed once per machine
 * it runs on.
 * Ubuntu: two — the flavour's tree, which carries the host programs itself (built for the
 * kernel's arch), and the shared linux-headers-<abi> (or linux-<x>-headers-<abi>) tree.
 */
import type { HeaderPackage, ListedPackage } from '../../model/kernel-list.ts';
import type { Arch } from '../../model/names.ts';
import type { SigningTool } from '../family.ts';
import type { MountRule } from '../../model/mount-rule.ts';
import { foreignHostToolsEnv } from '../../model/host-tools.ts';

export const ROLES = ['flavour', 'common', 'kbuild'] as const;

export const kernelDir = (kernelrelease: string) => `/usr/src/linux-headers-${kernelrelease}`;

/** Each package's trees go where Debian's absolute-path Makefiles expect them: /usr/src/*, /usr/lib/linux-kbuild-*. */
export const HEADER_MOUNT_RULES: readonly MountRule[] = [
  { from: 'usr/src', to: '/usr/src' },
  { from: 'usr/lib', to: '/usr/lib', prefix: 'linux-kbuild-' },
];

/** Ubuntu's kernels have no kbuild package: the host programs are in the flavour's own tree. */
const hostToolsInFlavour = (headers: ListedPackage[]) => !headers.some((h) => h.role === 'kbuild');

export function missingHostTools(headers: ListedPackage[], hostArch: Arch, kernelArch: Arch): string | undefined {
  if (hostToolsInFlavour(headers))
    return foreignHostToolsEnv(hostArch, kernelArch)
      ? undefined
      : `an Ubuntu ${kernelArch} kernel's host programs (in its linux-headers-<abi>-<flavour>) are ${kernelArch} binaries and the runner is ${hostArch}: build it on a ${kernelArch} runner ("runner": "${kernelArch}")`;
  return headers.some((h) => h.role === 'kbuild' && h.hostArch === hostArch)
    ? undefined
    : `the kernel list has no linux-kbuild package for a ${hostArch} runner`;
}

/** What the build needs to run the headers' host programs on this runner (Ubuntu's are the kernel's arch). */
export const hostToolsEnv = (headers: ListedPackage[], hostArch: Arch, kernelArch: Arch) =>
  hostToolsInFlavour(headers) ? (foreignHostToolsEnv(hostArch, kernelArch) ?? {}) : {};

/** sign-file from the kernel's kbuild tree for this machine (arm64 kernels list an x86_64 kbuild too), or Ubuntu's flavour tree. */
export function signingTool(headers: HeaderPackage[], host: Arch, kernelArch: Arch): SigningTool {
  if (hostToolsInFlavour(headers)) {
    const flavour = headers.find((h) => h.role === 'flavour');
    return flavour && kernelArch === host
      ? { package: flavour, pathPattern: '*/scripts/sign-file' }
      : { why: `the kernel's sign-file is a ${kernelArch} program and this machine is ${host}` };
  }
  const kbuild = headers.find((h) => h.role === 'kbuild' && h.hostArch === host);
  return kbuild
    ? { package: kbuild, pathPattern: '*/scripts/sign-file' }
    : { why: `no linux-kbuild package for this machine (${host}) to sign with` };
}

/** The flavour's own tree holds the kernel's .config. */
export const configPackage = <P extends ListedPackage>(headers: P[]): P | undefined =>
  headers.find((h) => h.role === 'flavour');
