/** Before a build that runs aarch64 host programs on x86_64 (model/host-tools.ts): can this machine? */
import { readFileSync } from 'node:fs';
import { KmatrixError } from '../core/errors.ts';

/** Fails with a remedy unless binfmt_misc runs aarch64 programs through qemu-aarch64 with the F flag. */
export function checkForeignHostTools(
  env: Record<string, string>,
  binfmt = '/proc/sys/fs/binfmt_misc/qemu-aarch64',
): void {
  if (!env.QEMU_LD_PREFIX) return;
  let entry = '';
  try {
    entry = readFileSync(binfmt, 'utf8');
  } catch {
    // not registered, or binfmt_misc not mounted
  }
  if (entry.startsWith('enabled') && /^flags: .*F/m.test(entry)) return;
  throw new KmatrixError("this machine cannot run the kernel's aarch64 host programs (fixdep, modpost)", {
    stage: 'build',
    remedy:
      'install qemu-user-static and binfmt-support (apt-get install -y qemu-user-static binfmt-support; tools/setup-host.sh does it), so binfmt_misc runs aarch64 programs through qemu-aarch64 with the F flag',
  });
}
