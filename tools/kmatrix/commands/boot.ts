import { join, resolve } from 'node:path';
import { targetFileFor, isTargetFilePath } from '../compile/execute.ts';
import { loadGuestLock } from '../model/guest-lock.ts';
import { bootTest, DEFAULT_BOOT_TIMEOUT_S } from '../boot/test.ts';
import { passed, renderBootResult } from '../boot/result.ts';
import { KmatrixError } from '../core/errors.ts';
import { defaultStoreDir, HeaderStore } from '../packages/store.ts';
import { loadTarget } from '../model/target.ts';
import { defineCommand, log } from './command.ts';

const about = `Boots the very kernel TARGET was built for under QEMU and proves its modules load: an
initramfs with a static busybox (pinned in toolchains/_guest/guest.lock.json), the built
modules and the driver's smoke test (support-matrix.json drivers.<name>.smokeTest) is booted
with qemu-system-x86_64 or qemu-system-aarch64 -M virt -cpu max; the guest runs insmod, the
smoke test and rmmod, and the serial console says how it went. Passes when all three succeed
and the kernel log has no BUG:, Oops or WARNING: line. This is what the Nx \`test-driver\` task
runs (\`npx nx run <project>:test-driver\` builds first and caches the result).

The kernel image (its package's SHA256 recorded in target.json) is fetched once into the
header store ($KMATRIX_STORE). KVM is used for x86_64 guests only after a kernel was seen to
boot with it on this machine; if that check fails in any way, one warning is printed and guests
run under TCG (KMATRIX_ACCEL=tcg forces emulation; KMATRIX_ACCEL=kvm makes a broken KVM an error).

TARGET is a project name (driver--distro--kernelrelease--arch) or driver/distro/kernelrelease/arch.
The result (result.json, console.log) is written to dist/boot/targets/<driver>/<distro>/
<kernelrelease>/<arch>/, or with --modules to reproduce/<project>/boot/. Exit 0 when the modules
load, or when there is nothing to boot (no kernel image in the archive, a DKMS build skipped for
this kernel: reported as "not tested"), else 1.
`;

export const bootCommand = defineCommand({
  name: 'boot',
  summary: "boot a target's kernel under QEMU and prove its modules load",
  args: 'TARGET',
  about,
  json: true,
  pathPositional: isTargetFilePath,
  options: {
    modules: {
      type: 'string',
      path: true,
      value: 'DIR',
      help: `boot these .ko files instead of the target's build output (e.g. a
        module built for another kernel, to see the kernel reject it)`,
    },
    out: { type: 'string', path: true, value: 'DIR', help: 'where to write the result instead' },
    timeout: {
      type: 'string',
      value: 'SECONDS',
      help: `hard limit for the guest (default ${DEFAULT_BOOT_TIMEOUT_S}); past it the guest is killed
        and reported as hung at its last console line`,
    },
    console: { type: 'boolean', default: false, help: "print the guest's serial console as it runs" },
  },
  async run({ values, positionals }, _, out) {
    if (positionals.length !== 1)
      throw new KmatrixError('boot takes exactly one TARGET', {
        stage: 'usage',
        remedy: 'see `npx kmatrix boot --help`',
      });
    const seconds = values.timeout === undefined ? DEFAULT_BOOT_TIMEOUT_S : Number(values.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0)
      throw new KmatrixError(`--timeout ${values.timeout} is not a positive number of seconds`, {
        stage: 'usage',
        remedy: 'e.g. --timeout 60',
      });
    const root = resolve('.');
    const target = await loadTarget(targetFileFor(root, positionals[0]!));
    // Other modules than the target's own must not pass for the target's recorded result.
    const outDir = values.out
      ? resolve(values.out)
      : values.modules
        ? join(root, 'reproduce', target.name, 'boot')
        : undefined;
    const result = await bootTest(root, target, {
      store: new HeaderStore(defaultStoreDir(), log),
      lock: await loadGuestLock(root),
      timeoutMs: seconds * 1000,
      ...(values.modules ? { modulesDir: resolve(values.modules) } : {}),
      ...(outDir ? { outDir } : {}),
      log,
      ...(values.console ? { onConsole: (line: string) => process.stderr.write(`  | ${line}\n`) } : {}),
    });
    out.print(renderBootResult(result).join('\n'));
    out.result({ ...result, passed: passed(result) });
    return passed(result) ? 0 : 1;
  },
});
