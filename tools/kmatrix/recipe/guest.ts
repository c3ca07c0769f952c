/**
 * A target's boot recipe — the guest a test-driver task boots — rendered from its spec and the
 * guest lock by one pure function, and the QEMU command line it interprets to. What the runner
 * adds is where the files are and the accelerator: KVM when this machine's KVM works, else TCG;
 * both are in the recipe, and acceleration never decides a verdict (boot/test.ts).
 */
import type { BootRecipe } from '../model/recipe.ts';
import type { TargetSpec } from '../model/target.ts';
import type { Arch } from '../model/names.ts';
import type { GuestLock } from '../model/guest-lock.ts';
import { familyOfHeaders } from '../distros/registry.ts';
import { sha256 } from '../core/hash.ts';
import { initScript } from './init-script.ts';
import { QEMU_BINARY } from './qemu-binary.ts';

export type Accel = 'kvm' | 'tcg';

/** The guest's memory: enough for busybox, the modules and a smoke test. */
const MEMORY_MIB = 256;

/** What a boot recipe is rendered from. */
export type BootSpec = Pick<TargetSpec, 'driver' | 'kernelrelease' | 'arch' | 'headers' | 'kernel'>;

/** The guest's /init for a module named `@module@`: its digest changes whenever the script's text does. */
export const initTemplateDigest = (hasSmokeTest: boolean) => sha256(initScript(['@module@'], hasSmokeTest));

function qemuOf(arch: Arch): BootRecipe['qemu'] {
  const common = [
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-m',
    String(MEMORY_MIB),
    '-smp',
    '1',
    '-serial',
    'stdio',
    '-kernel',
    '@kernel',
    '-initrd',
    '@initrd',
  ];
  // quiet: the emulated UART is slow and boot chatter is not what we test; panic=-1 + -no-reboot
  // turns a panic into QEMU exiting instead of a guest spinning until the timeout.
  const append = (console: string) => ['-append', `console=${console} quiet panic=-1`];
  if (arch === 'x86_64') {
    return {
      binary: QEMU_BINARY[arch],
      argv: ['@accel', '-M', 'pc', ...common, ...append('ttyS0')],
      accel: { tcg: ['-accel', 'tcg'], kvm: ['-accel', 'kvm', '-cpu', 'host'] },
    };
  }
  // pauth-impdef: the architected pointer-authentication algorithm costs TCG ~4× the boot time.
  return {
    binary: QEMU_BINARY[arch],
    argv: ['@accel', '-M', 'virt', '-cpu', 'max,pauth-impdef=on', ...common, ...append('ttyAMA0')],
    accel: { tcg: ['-accel', 'tcg'] },
  };
}

export function renderBootRecipe(spec: BootSpec, lock: GuestLock): BootRecipe {
  const image = spec.kernel.image;
  return {
    ...(image
      ? {
          kernel: {
            sha256: image.sha256,
            file: familyOfHeaders(spec.headers).kernelImageFile(spec.kernelrelease),
          },
        }
      : {}),
    busybox: lock.busybox[spec.arch].sha256,
    init: initTemplateDigest(Boolean(spec.driver.smokeTest)),
    ...(spec.driver.smokeTest ? { smokeTest: `${spec.driver.path}/${spec.driver.smokeTest}` } : {}),
    qemu: qemuOf(spec.arch),
  };
}

/** The accelerators a recipe offers. */
export const accelsOf = (recipe: BootRecipe): Accel[] => (recipe.qemu.accel.kvm ? ['kvm', 'tcg'] : ['tcg']);

/** QEMU's arguments for a recipe on this runner: the files' paths and the accelerator filled in. */
export function guestArgv(
  recipe: BootRecipe['qemu'],
  files: { kernel: string; initrd: string },
  accel: Accel,
): string[] {
  const accelArgs = recipe.accel[accel] ?? recipe.accel.tcg;
  return recipe.argv.flatMap((a) =>
    a === '@accel' ? accelArgs : a === '@kernel' ? [files.kernel] : a === '@initrd' ? [files.initrd] : [a],
  );
}
