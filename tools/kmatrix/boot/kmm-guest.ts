/**
 * The proof that a KMM kmod image does its job: the target's own kernel under QEMU (as
 * test-driver boots it) with the image's filesystem as the guest's root, doing what KMM does on a
 * node — the image-extractor's copy with the image's own programs, then modprobe of each module
 * from the copy — and the driver's smoke test. The verdict reads like a boot test's.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import type { Target } from '../model/target.ts';
import { busyboxOf } from '../model/guest-lock.ts';
import { GUEST_SMOKE, kmmInitScript } from '../recipe/init-script.ts';
import { requireCurrentBootRecipe } from '../recipe/check.ts';
import { readConsole } from './console.ts';
import { writeInitramfs, type InitramfsEntry } from './initramfs.ts';
import { bootableKernel, guestBusybox } from './kernel-image.ts';
import { bootGuest, DEFAULT_BOOT_TIMEOUT_S, type BootTestOptions } from './test.ts';
import type { BootResult } from './result.ts';

/** The files of an unpacked image as initramfs entries, parents first, in name order. */
async function treeEntries(dir: string): Promise<InitramfsEntry[]> {
  const out: InitramfsEntry[] = [];
  const walk = async (rel: string) => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, path));
      if (st.isSymbolicLink()) out.push({ type: 'symlink', path, target: await readlink(join(dir, path)) });
      else if (st.isDirectory()) {
        out.push({ type: 'dir', path, mode: st.mode & 0o7777 });
        await walk(path);
      } else if (st.isFile())
        out.push({ type: 'file', path, data: await readFile(join(dir, path)), mode: st.mode & 0o7777 });
    }
  };
  await walk('');
  return out;
}

export interface KmodBootOptions extends Pick<BootTestOptions, 'store' | 'lock' | 'timeoutMs' | 'log' | 'onConsole'> {
  /** The modules in the order KMM loads them (moduleName first, then modulesLoadingOrder). */
  modules: string[];
  /** The kernel version KMM copies by (`uname -r` without a trailing "+"). */
  kernel: string;
}

/** A boot result and the guest's whole serial console. */
export type KmodBootResult = BootResult & { consoleText: string };

/** Boots `imageDir` (an unpacked kmod image) on the target's kernel the way KMM would use it. */
export async function bootKmodImage(
  root: string,
  target: Target,
  imageDir: string,
  o: KmodBootOptions,
): Promise<KmodBootResult> {
  requireCurrentBootRecipe(target, o.lock);
  const image = target.kernel.image;
  if (!image || !target.boot.kernel) {
    throw new KmatrixError(`${target.name} has no kernel image to boot`, {
      stage: 'boot',
      target: target.name,
      remedy: target.kernel.imageGap ?? 'pick a target whose kernel image the archive serves',
    });
  }
  // A guest with no module to load proves nothing: never "loads ✓" for an empty list.
  if (o.modules.length === 0) {
    throw new KmatrixError(`no modules of ${target.name} to load from the image`, {
      stage: 'boot',
      target: target.name,
      remedy: 'boot an image the index records for this target (its entry names the modules)',
    });
  }
  const files = await treeEntries(imageDir);
  const has = (path: string) => files.some((f) => f.path === path);
  if (!has(`opt/lib/modules/${o.kernel}`)) {
    throw new KmatrixError(`the image holds no opt/lib/modules/${o.kernel}`, {
      stage: 'boot',
      target: target.name,
      remedy: 'this is not the kmod image of this target: check the image reference',
    });
  }
  const guest: InitramfsEntry[] = ['dev', 'proc', 'sys', 'tmp', 'lib', 'kmatrix']
    .filter((d) => !has(d))
    .map((path) => ({ type: 'dir', path }));
  guest.push({
    type: 'file',
    path: 'init',
    data: Buffer.from(kmmInitScript(o.kernel, o.modules, Boolean(target.driver.smokeTest))),
    mode: 0o755,
  });
  if (target.driver.smokeTest) {
    const script = await readFile(join(root, target.driver.path, target.driver.smokeTest));
    guest.push({ type: 'file', path: GUEST_SMOKE, data: script, mode: 0o755 });
  }
  const initramfs = writeInitramfs([...files, ...guest]);
  const kernel = await bootableKernel(o.store, image, target.boot.kernel.file, target.arch);
  const busybox = await guestBusybox(o.store, busyboxOf(o.lock, target.arch));
  const { run, accel } = await bootGuest(target, kernel, initramfs, busybox, {
    ...o,
    timeoutMs: o.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_S * 1000,
  });
  const verdict = readConsole(run.console, { kernelrelease: target.kernelrelease, modules: o.modules }, run.ended);
  return {
    target: target.name,
    kernelrelease: target.kernelrelease,
    arch: target.arch,
    ...verdict,
    accel,
    image: { name: image.name, version: image.version, sha256: image.sha256 },
    timings: {
      bootMs: run.bootMs,
      testMs: run.bootMs === undefined ? undefined : run.totalMs - run.bootMs,
      totalMs: run.totalMs,
    },
    consoleText: run.console,
  };
}
