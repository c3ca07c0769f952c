/**
 * Which accelerator a guest runs under. KVM can only ever help: it is used for x86_64 guests only
 * after a real kernel booted with it on this machine, and any way that check can go wrong — QEMU
 * aborting on an assertion inside KVM (seen on AMD EPYC VMs: `kvm_buf_set_msrs: Assertion … failed`),
 * a non-zero exit, no console at all, a guest that hangs — reads as "KVM does not work here": one
 * warning line, then TCG. The verdict is kept per machine boot and per QEMU binary (path and
 * version) in the store, so the check runs once. Only KMATRIX_ACCEL=kvm turns a broken KVM into an error.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { arch as hostArchOf } from 'node:os';
import { delimiter, join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import type { Arch } from '../model/names.ts';
import { qemuVersion } from './qemu.ts';
import type { Accel } from '../recipe/guest.ts';
import { QEMU_BINARY } from '../recipe/qemu-binary.ts';

/** Boots a bare guest under `accel` and says whether it booted; may throw (QEMU could not start). */
export type AccelProbe = (accel: Accel) => Promise<boolean>;

export interface AccelOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** The KVM device; a machine without it never tries KVM. */
  kvmDevice?: string;
  /** Node's name of the host CPU (`x64` on x86_64). */
  hostArch?: string;
}

function wantedAccel(env: NodeJS.ProcessEnv): 'auto' | Accel {
  const wanted = env.KMATRIX_ACCEL ?? 'auto';
  if (wanted === 'auto' || wanted === 'tcg' || wanted === 'kvm') return wanted;
  throw new KmatrixError(`KMATRIX_ACCEL=${wanted} is not one of auto, tcg, kvm`, {
    stage: 'usage',
    remedy: 'unset it (auto: KVM when it is seen to work) or set tcg',
  });
}

/** The QEMU binary the guest will run: the first on PATH, by path, size and mtime (a new build is a new binary). */
function binaryIdentity(arch: Arch, env: NodeJS.ProcessEnv): string {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, QEMU_BINARY[arch]);
    try {
      const st = statSync(file);
      if (st.isFile()) return `${file} ${st.size} ${st.mtimeMs}`;
    } catch {
      // not in this folder
    }
  }
  return QEMU_BINARY[arch];
}

interface Verdict {
  key: string;
  works: boolean;
  reason?: string;
}

/** Where this machine boot's verdict for this QEMU binary lives. */
async function verdictFile(
  storeDir: string,
  arch: Arch,
  env: NodeJS.ProcessEnv,
): Promise<{ file: string; key: string }> {
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  const key = `${bootId} ${binaryIdentity(arch, env)} ${await qemuVersion(arch)}`;
  const id = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return { file: join(storeDir, 'boot', `kvm-${id}.json`), key };
}

async function remember(
  storeDir: string,
  arch: Arch,
  env: NodeJS.ProcessEnv,
  works: boolean,
  reason?: string,
): Promise<void> {
  const { file, key } = await verdictFile(storeDir, arch, env);
  const verdict: Verdict = { key, works, ...(reason ? { reason } : {}) };
  await writeFileAtomic(file, `${JSON.stringify(verdict)}\n`);
}

function kvmBroken(reason: string): KmatrixError {
  return new KmatrixError(`KMATRIX_ACCEL=kvm, but KVM did not boot a kernel on this machine: ${reason}`, {
    stage: 'boot',
    remedy: 'unset KMATRIX_ACCEL to fall back to TCG, or fix nested virtualisation',
  });
}

/** Runs the probe; whatever goes wrong in it is the answer "no", with the reason. */
async function probeKvm(probe: AccelProbe): Promise<{ works: boolean; reason?: string }> {
  try {
    return (await probe('kvm'))
      ? { works: true }
      : { works: false, reason: 'the guest did not boot under KVM (no console, a hang or an early exit)' };
  } catch (error) {
    return { works: false, reason: (error as Error).message };
  }
}

export async function chooseAccel(
  arch: Arch,
  storeDir: string,
  probe: AccelProbe,
  options: AccelOptions = {},
): Promise<Accel> {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => {});
  const wanted = wantedAccel(env);
  // Only x86_64 guests on an x86_64 host are ever accelerated; arm64 guests are always emulated.
  if (wanted === 'tcg' || arch !== 'x86_64') return 'tcg';
  if ((options.hostArch ?? hostArchOf()) !== 'x64' || !existsSync(options.kvmDevice ?? '/dev/kvm')) {
    if (wanted === 'kvm') throw kvmBroken('there is no /dev/kvm on an x86_64 host here');
    return 'tcg';
  }
  const { file, key } = await verdictFile(storeDir, arch, env);
  const known = await readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as Verdict,
    () => undefined,
  );
  let verdict = known?.key === key ? known : undefined;
  if (!verdict) {
    log('checking whether KVM really boots a kernel here (once per machine boot and QEMU binary)');
    const probed = await probeKvm(probe);
    verdict = { key, ...probed };
    if (probed.works) log('KVM works: guests run accelerated');
    else log(`warning: KVM is present but did not boot a kernel (${probed.reason}); guests run under TCG (emulation)`);
    await remember(storeDir, arch, env, probed.works, probed.reason);
  }
  if (!verdict.works && wanted === 'kvm') throw kvmBroken(verdict.reason ?? 'see an earlier warning');
  return verdict.works ? 'kvm' : 'tcg';
}

/**
 * A guest that failed under KVM after the check passed, and finished under TCG (KVM broke since):
 * remember that, so every later test runs under TCG. With KMATRIX_ACCEL=kvm it is an error instead.
 */
export async function demoteKvm(
  arch: Arch,
  storeDir: string,
  reason: string,
  options: AccelOptions = {},
): Promise<void> {
  const env = options.env ?? process.env;
  if (wantedAccel(env) === 'kvm') throw kvmBroken(reason);
  options.log?.(`warning: KVM failed this guest (${reason}); it ran under TCG, and so will later guests`);
  await remember(storeDir, arch, env, false, reason);
}
