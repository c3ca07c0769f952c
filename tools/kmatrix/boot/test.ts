/**
 * One boot test: the target's own kernel under QEMU, an initramfs with a static busybox, the
 * built modules and the driver's smoke test; the verdict read from the serial console. Writes
 * dist/boot/<target>/result.json and console.log (whole files or nothing), whatever the verdict.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { readBuildRecord } from '../model/build-record.ts';
import type { HeaderStore } from '../packages/store.ts';
import type { Target } from '../model/target.ts';
import { outputDir } from '../model/target-place.ts';
import { readConsole } from './console.ts';
import { bootOutputDir, type BootResult } from './result.ts';
import { busyboxOf, type GuestLock } from '../model/guest-lock.ts';
import { GUEST_MODULES, GUEST_SMOKE, initScript } from '../recipe/init-script.ts';
import { bareGuest, writeInitramfs, type InitramfsEntry } from './initramfs.ts';
import { bootableKernel, guestBusybox, type BootableKernel } from './kernel-image.ts';
import { BOOTED_MARKER, DONE_MARKER, qemuVersion, runGuest, type GuestRun } from './qemu.ts';
import { guestArgv, type Accel } from '../recipe/guest.ts';
import { requireCurrentBootRecipe } from '../recipe/check.ts';
import { chooseAccel, demoteKvm } from './accel.ts';

export const DEFAULT_BOOT_TIMEOUT_S = 90;

export interface BootTestOptions {
  store: HeaderStore;
  lock: GuestLock;
  timeoutMs?: number;
  /** Folder with the built <module>.ko files; default: the target's build-driver output */
  modulesDir?: string;
  /** Where result.json and console.log go; default: bootOutputDir */
  outDir?: string;
  log?: (line: string) => void;
  /** Each console line as it arrives */
  onConsole?: (line: string) => void;
}

async function guestFiles(
  root: string,
  target: Target,
  moduleNames: string[],
  modulesDir: string,
  busybox: Buffer,
  init: string,
): Promise<InitramfsEntry[]> {
  const entries: InitramfsEntry[] = ['bin', 'dev', 'proc', 'sys', 'tmp', 'kmatrix', GUEST_MODULES].map((path) => ({
    type: 'dir',
    path,
  }));
  entries.push({ type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 });
  entries.push({ type: 'file', path: 'init', data: Buffer.from(init), mode: 0o755 });
  for (const m of moduleNames) {
    const file = join(modulesDir, `${m}.ko`);
    if (!existsSync(file)) {
      throw new KmatrixError(`no built module ${relative(root, file)} to boot`, {
        stage: 'boot',
        target: target.name,
        remedy: `build it first: npx nx run ${target.name}:build-driver (test-driver depends on it and does so itself)`,
      });
    }
    entries.push({ type: 'file', path: `${GUEST_MODULES}/${m}.ko`, data: await readFile(file) });
  }
  if (target.driver.smokeTest) {
    const script = join(root, target.driver.path, target.driver.smokeTest);
    entries.push({ type: 'file', path: GUEST_SMOKE, data: await readFile(script), mode: 0o755 });
  }
  return entries;
}

async function bootOnce(
  target: Target,
  kernel: BootableKernel,
  initramfs: Buffer,
  accel: Accel,
  timeoutMs: number,
  onLine?: (line: string) => void,
) {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-boot-'));
  try {
    const initrd = join(dir, 'initramfs.cpio');
    await writeFile(initrd, initramfs);
    return await runGuest(
      target.arch,
      guestArgv(target.boot.qemu, { kernel: kernel.path, initrd }, accel),
      timeoutMs,
      onLine,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The guest under the accelerator chooseAccel picks. Acceleration never decides a verdict: a
 * guest that does not finish its script under KVM (QEMU failed, no boot, a crash or a hang) runs
 * again under TCG, whose run gives the verdict; KVM is demoted for later guests when QEMU failed
 * under it or the same guest finishes without it. KMATRIX_ACCEL=kvm keeps a KVM run's verdict, and
 * makes a guest that does not even boot under KVM an error.
 */
export async function bootGuest(
  target: Target,
  kernel: BootableKernel,
  initramfs: Buffer,
  busybox: Buffer,
  options: BootTestOptions,
): Promise<{ run: GuestRun; accel: Accel }> {
  const log = options.log ?? (() => {});
  const storeDir = options.store.dir;
  const timeoutMs = options.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_S * 1000;
  // The probe boots a bare guest, only when this machine's KVM verdict is not known yet.
  const probe = async (a: Accel) =>
    (await bootOnce(target, kernel, bareGuest(busybox, DONE_MARKER), a, 10_000)).console.includes(BOOTED_MARKER);
  const accel = await chooseAccel(target.arch, storeDir, probe, { log });
  log(`booting ${target.kernelrelease} (${target.arch}, ${accel === 'kvm' ? 'KVM' : 'TCG'}, ${kernel.format})`);
  const first = await bootOnce(target, kernel, initramfs, accel, timeoutMs, options.onConsole).catch(
    (error: unknown) => error as Error,
  );
  const finished = (r: GuestRun | Error) => !(r instanceof Error) && r.console.includes(DONE_MARKER);
  if (accel === 'tcg' || finished(first)) {
    if (first instanceof Error) throw first;
    return { run: first, accel };
  }
  const booted = !(first instanceof Error) && first.console.includes(BOOTED_MARKER);
  const reason =
    first instanceof Error
      ? first.message
      : booted
        ? 'the guest crashed or hung under KVM'
        : 'the guest never reached its /init under KVM';
  if (process.env.KMATRIX_ACCEL === 'kvm') {
    // The user asked for KVM: a guest that does not boot with it is an error; one that does, is judged.
    if (!booted || first instanceof Error) await demoteKvm(target.arch, storeDir, reason, { log });
    return { run: first as GuestRun, accel };
  }
  log(`booting ${target.kernelrelease} (${target.arch}, TCG, ${kernel.format}): ${reason}`);
  const run = await bootOnce(target, kernel, initramfs, 'tcg', timeoutMs, options.onConsole);
  if (first instanceof Error || finished(run)) await demoteKvm(target.arch, storeDir, reason, { log });
  return { run, accel: 'tcg' };
}

export async function bootTest(root: string, target: Target, options: BootTestOptions): Promise<BootResult> {
  const log = options.log ?? (() => {});
  const outDir = options.outDir ?? bootOutputDir(root, target);
  const base = {
    target: target.name,
    kernelrelease: target.kernelrelease,
    arch: target.arch,
    kernelLines: [],
    smokeOutput: [],
  };
  requireCurrentBootRecipe(target, options.lock);
  const image = target.kernel.image;
  const modulesDir = options.modulesDir ?? outputDir(root, target);
  const record = await readBuildRecord(modulesDir);
  const skipped = record?.skipped;
  // In the build's order: a DKMS driver's modules are the ones its dkms.conf named for this kernel.
  // A folder without a build record (--modules DIR of .ko files): every module in it, by name.
  const moduleNames = record
    ? record.outputs.map((o) => o.file.replace(/\.ko$/, ''))
    : options.modulesDir
      ? (await readdir(modulesDir).catch(() => [] as string[]))
          .filter((f) => f.endsWith('.ko'))
          .sort()
          .map((f) => f.slice(0, -3))
      : (target.driver.modules ?? []);
  // Nothing to boot is not the driver's failure: reported, not failed.
  const gap = !image
    ? `no kernel image to boot (an infrastructure gap): ${target.kernel.imageGap ?? 'none recorded'}`
    : skipped
      ? `the build was skipped: ${skipped}`
      : undefined;
  if (gap || !image) {
    const result: BootResult = { ...base, status: 'gap', message: gap! };
    await writeFileAtomic(join(outDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  }
  // A guest with no module to load proves nothing: never "loads ✓" for an empty list.
  if (moduleNames.length === 0) {
    throw new KmatrixError(`no built modules of ${target.name} in ${relative(root, modulesDir) || '.'} to boot`, {
      stage: 'boot',
      target: target.name,
      remedy: `build it first: npx nx run ${target.name}:build-driver (test-driver depends on it and does so itself)`,
    });
  }
  const qemu = await qemuVersion(target.arch);
  log(`preparing ${image.name} ${image.version}`);
  const kernel = await bootableKernel(options.store, image, target.boot.kernel!.file, target.arch);
  const busybox = await guestBusybox(options.store, busyboxOf(options.lock, target.arch));
  const files = await guestFiles(
    root,
    target,
    moduleNames,
    modulesDir,
    busybox,
    initScript(moduleNames, Boolean(target.driver.smokeTest)),
  );
  const initramfs = writeInitramfs(files);
  const modules = files.flatMap((f) =>
    f.type === 'file' && f.path.startsWith(`${GUEST_MODULES}/`)
      ? [{ file: f.path.slice(GUEST_MODULES.length + 1), sha256: createHash('sha256').update(f.data).digest('hex') }]
      : [],
  );
  const { run, accel } = await bootGuest(target, kernel, initramfs, busybox, options);
  const verdict = readConsole(run.console, { kernelrelease: target.kernelrelease, modules: moduleNames }, run.ended);
  const consoleFile = join(outDir, 'console.log');
  await writeFileAtomic(consoleFile, run.console);
  const result: BootResult = {
    ...base,
    ...verdict,
    accel,
    qemu,
    image: { name: image.name, version: image.version, sha256: image.sha256 },
    modules,
    timings: {
      bootMs: run.bootMs,
      testMs: run.bootMs === undefined ? undefined : run.totalMs - run.bootMs,
      totalMs: run.totalMs,
    },
    console: relative(root, consoleFile),
  };
  await writeFileAtomic(join(outDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}
