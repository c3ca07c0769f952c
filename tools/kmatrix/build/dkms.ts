/**
 * DKMS source trees: dkms.conf is a bash fragment, so it is evaluated the way DKMS does — sourced
 * by bash inside the toolchain container with kernelver, kernel_source_dir, arch and dkms_tree
 * set — and its MAKE[0] run after its PATCH[]es, honouring BUILD_EXCLUSIVE_KERNEL / _ARCH /
 * _CONFIG (dkms-build.sh). A kernel the driver excludes is reported as skipped with the reason,
 * not failed. ARCH, CROSS_COMPILE and KCFLAGS reach kbuild through the environment.
 */
import { readFileSync } from 'node:fs';

/** Printed by dkms-build.sh when the driver excludes this kernel; the build turns it into a skip. */
export const SKIP_MARKER = 'kmatrix-dkms-skip:';

const SCRIPT = readFileSync(new URL('./dkms-build.sh', import.meta.url), 'utf8');

/** The command a DKMS driver's build runs in the container. */
export function dkmsCommand(kernelrelease: string, kernelDir: string, arch: string): string[] {
  return ['bash', '-c', SCRIPT, 'kmatrix-dkms', kernelrelease, kernelDir, arch];
}

/** Module names a dkms.conf declares (BUILT_MODULE_NAME[], else PACKAGE_NAME), evaluated with no kernel. */
export const DKMS_MODULES_SCRIPT = [
  'set +u',
  'kernelver=""; kernel_source_dir=/nonexistent; arch="$(uname -m)"; dkms_tree=/var/lib/dkms; source_tree=/usr/src',
  'cd /build/src',
  '. ./dkms.conf',
  'if [ "${#BUILT_MODULE_NAME[@]}" -eq 0 ]; then echo "$PACKAGE_NAME"; else printf "%s\\n" "${BUILT_MODULE_NAME[@]}"; fi',
].join('\n');
