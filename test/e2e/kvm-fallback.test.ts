/**
 * A machine whose /dev/kvm is there but broken (QEMU aborts on an assertion inside KVM, as on
 * some AMD EPYC VMs): the boot tests still pass, under TCG, with one warning — through
 * `kmatrix boot` and through `nx run-many -t test-driver`. The broken KVM is a stand-in for
 * qemu-system-x86_64 on PATH that aborts under `-accel kvm` and runs the real QEMU otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { createWorkspace, expectOk, prepareOneTarget } from '../support/workspace.ts';

/** A qemu-system-x86_64 that dies as the broken KVM did, leaving a mark that it was asked for KVM. */
async function brokenKvmQemu(dir: string): Promise<string> {
  const real = (await execa('sh', ['-c', 'command -v qemu-system-x86_64'])).stdout.trim();
  await mkdir(dir, { recursive: true });
  const script = `#!/bin/sh
for a in "$@"; do
  if [ "$a" = kvm ]; then
    touch "${dir}/asked-for-kvm"
    echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion \\\`ret == cpu->kvm_msr_buf->nmsrs' failed." >&2
    kill -ABRT $$
  fi
done
exec ${real} "$@"
`;
  await writeFile(join(dir, 'qemu-system-x86_64'), script);
  await chmod(join(dir, 'qemu-system-x86_64'), 0o755);
  return dir;
}

/**
 * A qemu-system-x86_64 whose KVM works once (the check boots, really under TCG) and then aborts:
 * KVM that broke after it was checked.
 */
async function kvmThatBreaksLater(dir: string): Promise<string> {
  const real = (await execa('sh', ['-c', 'command -v qemu-system-x86_64'])).stdout.trim();
  await mkdir(dir, { recursive: true });
  const script = `#!/bin/sh
if printf '%s\\n' "$@" | grep -qx kvm; then
  if [ -e "${dir}/checked" ]; then
    echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed." >&2
    kill -ABRT $$
  fi
  touch "${dir}/checked"
  for a in "$@"; do
    shift
    case "$a" in kvm) set -- "$@" tcg ;; host) set -- "$@" max ;; *) set -- "$@" "$a" ;; esac
  done
fi
exec ${real} "$@"
`;
  await writeFile(join(dir, 'qemu-system-x86_64'), script);
  await chmod(join(dir, 'qemu-system-x86_64'), 0o755);
  return dir;
}

test('on a machine whose KVM aborts QEMU, boot tests pass under TCG with one warning', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-kvm-');
  t.after(() => ws.remove());
  const name = await prepareOneTarget(ws, {
    path: 'drivers/kmx-echo',
    modules: ['kmx_echo'],
    smokeTest: 'smoke-test.sh',
  });
  const kvm = existsSync('/dev/kvm');
  if (!kvm)
    t.diagnostic('NOTE: this machine has no /dev/kvm, so no KVM check runs at all: only the TCG verdicts are checked');

  // Two stand-ins in two folders: each is a QEMU binary of its own, so each is checked once.
  const viaNx = await brokenKvmQemu(join(ws.dir, '.broken-kvm-nx'));
  const run = await ws.nx(['run-many', '-t', 'test-driver', '--output-style=stream'], {
    PATH: `${viaNx}:${process.env.PATH}`,
  });
  expectOk(run, 'nx run-many -t test-driver');
  assert.match(run.all, /debian-bookworm x86_64\s+1\s+0\s+0\s+0\s+1\s+0\s+0/);
  assert.match(run.all, /booting 6\.1\.0-\d+-amd64 \(x86_64, TCG, /);

  const viaCli = await brokenKvmQemu(join(ws.dir, '.broken-kvm-cli'));
  const boot = await ws.kmatrix(['boot', name], { PATH: `${viaCli}:${process.env.PATH}` });
  expectOk(boot, 'kmatrix boot');
  assert.match(boot.stdout, /loads ✓/);
  const again = await ws.kmatrix(['boot', name], { PATH: `${viaCli}:${process.env.PATH}` });
  expectOk(again, 'kmatrix boot, again');

  for (const [what, out, dir] of [
    ['nx', run.all, viaNx],
    ['kmatrix boot', boot.all, viaCli],
  ] as const) {
    const warnings = out.split('\n').filter((l) => /warning: KVM is present but did not boot a kernel/.test(l));
    if (kvm) {
      assert.ok(existsSync(join(dir, 'asked-for-kvm')), `${what}: the check asked QEMU for KVM`);
      assert.equal(warnings.length, 1, `${what}: one warning line\n${out}`);
      assert.match(warnings[0]!, /kvm_buf_set_msrs: Assertion .* failed.*; guests run under TCG/);
    } else assert.equal(warnings.length, 0);
  }
  // The verdict is remembered: the second boot does not check again.
  assert.doesNotMatch(again.all, /checking whether KVM|warning: KVM/);
  // KVM that passes the check and then fails the real boot: the guest boots again under TCG, and
  // later guests skip KVM.
  if (kvm) {
    const later = await kvmThatBreaksLater(join(ws.dir, '.kvm-breaks-later'));
    const first = expectOk(
      await ws.kmatrix(['boot', name], { PATH: `${later}:${process.env.PATH}` }),
      'boot on KVM that breaks after the check',
    );
    assert.match(first.all, /KVM works: guests run accelerated/);
    assert.match(
      first.all,
      /warning: KVM failed this guest \(QEMU could not start the guest: .*Assertion failed\.\); it ran under TCG/,
    );
    assert.match(first.stdout, /loads ✓/);
    const next = expectOk(await ws.kmatrix(['boot', name], { PATH: `${later}:${process.env.PATH}` }), 'the next boot');
    assert.match(next.all, /booting .* \(x86_64, TCG, /);
    assert.doesNotMatch(next.all, /KVM/, 'no KVM attempt after it failed');
  }
  // Only KMATRIX_ACCEL=kvm turns the broken KVM into an error.
  const forced = await ws.kmatrix(['boot', name], { PATH: `${viaCli}:${process.env.PATH}`, KMATRIX_ACCEL: 'kvm' });
  assert.equal(forced.exitCode, 1, forced.all);
  assert.match(
    forced.stderr,
    kvm
      ? /KMATRIX_ACCEL=kvm, but KVM did not boot a kernel on this machine: QEMU could not start the guest/
      : /KMATRIX_ACCEL=kvm, but KVM did not boot a kernel on this machine: there is no \/dev\/kvm/,
  );
});
