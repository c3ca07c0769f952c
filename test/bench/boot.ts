/**
 * Bench figure "boot tests": `nx run-many -t test-driver` over the default matrix (every target
 * of support-matrix.json, both archs, builds already cached so only the boots are timed), against
 * a bare QEMU boot of the same kernels with an /init that powers off at once, run with the same
 * parallelism — the floor any boot test pays. Reported: tests per minute, the ratio to the floor,
 * and the share of each test spent booting vs. testing (from each result.json).
 */
import { cpus } from 'node:os';
import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGuestLock, busyboxOf } from '../../tools/kmatrix/model/guest-lock.ts';
import { bootableKernel, guestBusybox } from '../../tools/kmatrix/boot/kernel-image.ts';
import { bareGuest } from '../../tools/kmatrix/boot/initramfs.ts';
import { DONE_MARKER, runGuest } from '../../tools/kmatrix/boot/qemu.ts';
import { guestArgv } from '../../tools/kmatrix/recipe/guest.ts';
import { bootOutputDir, type BootResult } from '../../tools/kmatrix/boot/result.ts';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { loadTarget, type Target } from '../../tools/kmatrix/model/target.ts';
import { existingTargetFiles } from '../../tools/kmatrix/gen/sync.ts';
import { createWorkspace, expectOk, nxBin, repoRoot, testStore } from '../support/workspace.ts';
import { measure } from './peak-memory.ts';
import { median } from './stats.ts';

export interface BootBench {
  targets: number;
  parallel: number;
  oursSeconds: number;
  baselineSeconds: number;
  /** summed over all tests of the median run */
  bootShare: number;
}

async function pool<T>(items: T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}

/** The floor: each kernel booted to a shell that powers off, same QEMU settings and parallelism. */
async function bareBoots(targets: Target[], parallel: number, store: HeaderStore): Promise<number> {
  const lock = await loadGuestLock(repoRoot);
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-bench-boot-'));
  try {
    const prepared = await Promise.all(
      targets.map(async (t, i) => {
        const kernel = await bootableKernel(store, t.kernel.image!, t.boot.kernel!.file, t.arch);
        const initrd = join(dir, `${i}.cpio`);
        const busybox = await guestBusybox(store, busyboxOf(lock, t.arch));
        await writeFile(initrd, bareGuest(busybox, DONE_MARKER));
        return { t, kernel, initrd };
      }),
    );
    const start = process.hrtime.bigint();
    await pool(prepared, parallel, async ({ t, kernel, initrd }) => {
      const run = await runGuest(t.arch, guestArgv(t.boot.qemu, { kernel: kernel.path, initrd }, 'tcg'), 120_000);
      if (!run.console.includes('KMX-RESULT booted'))
        throw new Error(`bare boot of ${t.kernelrelease} did not come up:\n${run.console.slice(-2000)}`);
    });
    return Number(process.hrtime.bigint() - start) / 1e9;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function bootBench(runs: number): Promise<BootBench> {
  const parallel = cpus().length;
  const ws = await createWorkspace('kmatrix-bench-boot-');
  try {
    for (const t of ['debian-bullseye', 'debian-bookworm', 'debian-trixie'])
      expectOk(await ws.kmatrix(['toolchain', 'build', t]), `toolchain build ${t}`);
    expectOk(await ws.kmatrix(['gen']), 'gen');
    await ws.commitAll('targets');
    const targets = await Promise.all((await existingTargetFiles(ws.dir)).map((f) => loadTarget(join(ws.dir, f))));
    const bootable = targets.filter((t) => t.kernel.image);
    process.stderr.write(`building ${targets.length} targets (not timed)…\n`);
    expectOk(await ws.nx(['run-many', '-t', 'build-driver', `--parallel=${parallel}`]), 'builds');
    // KMATRIX_ACCEL=tcg on both sides: the figure is about emulation, wherever it runs.
    const env = { ...ws.env, KMATRIX_ACCEL: 'tcg' };
    const ours: { seconds: number; bootShare: number }[] = [];
    const baseline: number[] = [];
    const store = new HeaderStore(testStore);
    for (let i = 0; i < runs; i++) {
      // A new smoke test makes every boot test (and nothing else) run again.
      await appendFile(join(ws.dir, 'drivers/kmx-echo/smoke-test.sh'), `# bench run ${i}\n`);
      const m = await measure(
        process.execPath,
        [nxBin, 'run-many', '-t', 'test-driver', `--parallel=${parallel}`, '--output-style=static'],
        { cwd: ws.dir, env },
      );
      if (m.exitCode !== 0) throw new Error(`test-driver run failed:\n${m.output.slice(-3000)}`);
      let boot = 0;
      let test = 0;
      for (const t of bootable) {
        const r = JSON.parse(await readFile(join(bootOutputDir(ws.dir, t), 'result.json'), 'utf8')) as BootResult;
        if (r.status !== 'loads') throw new Error(`${t.name}: ${r.status} — ${r.message}`);
        boot += r.timings?.bootMs ?? 0;
        test += r.timings?.testMs ?? 0;
      }
      ours.push({ seconds: m.seconds, bootShare: boot / (boot + test) });
      baseline.push(await bareBoots(bootable, parallel, store));
    }
    const mid = [...ours].sort((a, b) => a.seconds - b.seconds)[Math.floor(ours.length / 2)]!;
    return {
      targets: bootable.length,
      parallel,
      oursSeconds: mid.seconds,
      baselineSeconds: median(baseline),
      bootShare: mid.bootShare,
    };
  } finally {
    await ws.remove();
  }
}
