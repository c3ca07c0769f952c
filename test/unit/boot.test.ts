/**
 * The pure parts of test-driver: the initramfs the kernel unpacks, the verdict read from a serial
 * console (every failure mode, from recorded console text), the PVH check, and the kernel image
 * that crawl and gen record for each kernel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitramfs } from '../../tools/kmatrix/boot/initramfs.ts';
import { extractCpio } from '../../tools/kmatrix/packages/cpio.ts';
import { readConsole } from '../../tools/kmatrix/boot/console.ts';
import { bzImagePayload, hasPvhNote } from '../../tools/kmatrix/boot/kernel-image.ts';
import { initScript } from '../../tools/kmatrix/recipe/init-script.ts';
import { parseStanzas } from '../../tools/kmatrix/distros/deb/archive/deb822.ts';
import { kernelsFromIndex } from '../../tools/kmatrix/distros/deb/archive/crawl.ts';

test('the initramfs is a newc archive the kernel (and cpio) can unpack, byte-identical for the same contents', async (t) => {
  const entries = [
    { type: 'dir' as const, path: 'bin' },
    { type: 'file' as const, path: 'bin/busybox', data: Buffer.from('\x7fELF not really'), mode: 0o755 },
    { type: 'symlink' as const, path: 'bin/sh', target: 'busybox' },
    { type: 'file' as const, path: 'init', data: Buffer.from('#!/bin/sh\n') },
  ];
  const a = writeInitramfs(entries);
  assert.ok(a.equals(writeInitramfs(entries)), 'deterministic');
  assert.equal(a.length % 512, 0);
  assert.equal(a.toString('latin1', 0, 6), '070701');
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-initramfs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await extractCpio(a, dir);
  assert.equal(await readFile(join(dir, 'bin/busybox'), 'latin1'), '\x7fELF not really');
  assert.equal((await stat(join(dir, 'bin/busybox'))).mode & 0o777, 0o755);
  assert.equal(await readlink(join(dir, 'bin/sh')), 'busybox');
  assert.throws(() => writeInitramfs([{ type: 'dir', path: '../escape' }]), /invalid initramfs path/);
});

const ok = (release: string) => `[    3.1] Freeing unused kernel image
KMX-RESULT booted ${release}
KMX-RESULT step insmod kmx_echo
KMX-RESULT insmod-ok kmx_echo
KMX-RESULT step smoke
KMX-SMOKE echo device ok
KMX-RESULT smoke-ok
KMX-RESULT step rmmod kmx_echo
KMX-RESULT rmmod-ok kmx_echo
KMX-DMESG [    3.5] kmx_echo: loading out-of-tree module taints kernel.
KMX-DMESG [    3.5] kmx_echo: module verification failed: signature and/or required key missing - tainting kernel
KMX-DMESG [    3.6] kmx_echo: ready on /dev/kmx_echo
KMX-RESULT done
[    3.9] reboot: Power down
`;
const expected = { kernelrelease: '6.1.0-57-amd64', modules: ['kmx_echo'] };

test('a console that shows insmod, smoke test and rmmod succeeding reads as "loads"', () => {
  const v = readConsole(ok('6.1.0-57-amd64'), expected, 'exited');
  assert.equal(v.status, 'loads', v.message);
  assert.equal(v.booted, '6.1.0-57-amd64');
  assert.deepEqual(v.smokeOutput, ['echo device ok']);
});

test('each way a boot test fails has its own verdict and message', () => {
  const rejected = `KMX-RESULT booted 6.1.0-57-amd64
KMX-RESULT insmod-failed kmx_echo insmod: can't insert '/kmatrix/modules/kmx_echo.ko': invalid module format
KMX-DMESG [    3.8] kmx_echo: disagrees about version of symbol module_layout
KMX-DMESG [    3.8] kmx_echo: disagrees about version of symbol module_layout
KMX-RESULT done
`;
  const r = readConsole(rejected, expected, 'exited');
  assert.equal(r.status, 'rejected');
  assert.equal(r.message, 'rejected by kernel: kmx_echo: disagrees about version of symbol module_layout');
  assert.deepEqual(
    r.kernelLines,
    ['kmx_echo: disagrees about version of symbol module_layout'],
    'busybox tries two syscalls: one line, not two',
  );

  const warn = ok('6.1.0-57-amd64').replace(
    'KMX-RESULT done',
    'KMX-DMESG [    3.7] WARNING: CPU: 0 PID: 80 at kmx_echo_init+0x10/0x20 [kmx_echo]\nKMX-RESULT done',
  );
  assert.equal(readConsole(warn, expected, 'exited').status, 'kernel-error');
  assert.match(
    readConsole(warn, expected, 'exited').message,
    /^kernel error: WARNING: CPU: 0 PID: 80 at kmx_echo_init/,
  );

  const panic = `KMX-RESULT booted 6.1.0-57-amd64\nKMX-RESULT step insmod kmx_echo\n[    3.7] BUG: kernel NULL pointer dereference, address: 0000000000000000\n[    3.7] Kernel panic - not syncing: Fatal exception\n`;
  const p = readConsole(panic, expected, 'exited');
  assert.equal(p.status, 'kernel-error');
  assert.match(p.message, /BUG: kernel NULL pointer dereference/);
  assert.ok(p.kernelLines.some((l) => l.startsWith('Kernel panic')));

  const hung = 'KMX-RESULT booted 6.1.0-57-amd64\nKMX-RESULT step smoke\nKMX-SMOKE waiting\n';
  assert.deepEqual(
    [readConsole(hung, expected, 'timeout').status, readConsole(hung, expected, 'timeout').message],
    ['hung', 'hung at: KMX-SMOKE waiting'],
  );
  assert.equal(readConsole('', expected, 'timeout').message, 'hung at: (no console output)');

  const smoke = ok('6.1.0-57-amd64').replace(
    'KMX-SMOKE echo device ok\nKMX-RESULT smoke-ok',
    'KMX-SMOKE read back garbage\nKMX-RESULT smoke-failed 1',
  );
  assert.deepEqual(
    [readConsole(smoke, expected, 'exited').status, readConsole(smoke, expected, 'exited').message],
    ['smoke-failed', 'the smoke test exited 1: read back garbage'],
  );

  const unload = ok('6.1.0-57-amd64').replace(
    'KMX-RESULT rmmod-ok kmx_echo',
    "KMX-RESULT rmmod-failed kmx_echo rmmod: can't unload module: Resource temporarily unavailable",
  );
  assert.equal(readConsole(unload, expected, 'exited').status, 'unload-failed');

  assert.equal(readConsole(ok('6.12.117+deb12-amd64'), expected, 'exited').status, 'wrong-kernel');
  assert.equal(
    readConsole('KMX-RESULT booted 6.1.0-57-amd64\nKMX-RESULT step insmod kmx_echo\n', expected, 'exited').status,
    'crashed',
  );
});

test('the init script loads modules in order, unloads them in reverse, and quotes names', () => {
  const s = initScript(['a_core', 'b_net'], true);
  assert.match(s, /for m in 'a_core' 'b_net'; do/);
  assert.match(s, /for m in 'b_net' 'a_core'; do/);
  assert.match(s, /say step smoke/);
  assert.doesNotMatch(initScript(['a'], false), /step smoke/);
});

test('a vmlinux with a Xen PHYS32_ENTRY note boots through PVH; anything else does not', () => {
  const elf = Buffer.alloc(0x200);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2; // 64-bit
  elf.writeBigUInt64LE(0x40n, 0x20); // phoff
  elf.writeUInt16LE(56, 0x36);
  elf.writeUInt16LE(1, 0x38);
  elf.writeUInt32LE(4, 0x40); // PT_NOTE
  elf.writeBigUInt64LE(0x100n, 0x48); // offset
  elf.writeBigUInt64LE(0x18n, 0x60); // filesz
  elf.writeUInt32LE(4, 0x100); // namesz "Xen\0"
  elf.writeUInt32LE(4, 0x104); // descsz
  elf.writeUInt32LE(18, 0x108); // XEN_ELFNOTE_PHYS32_ENTRY
  elf.write('Xen\0', 0x10c, 'latin1');
  assert.equal(hasPvhNote(elf), true);
  elf.writeUInt32LE(17, 0x108);
  assert.equal(hasPvhNote(elf), false);
  assert.equal(hasPvhNote(Buffer.from('not an elf at all, not at all, not at all, not at all, not at all')), false);
  assert.equal(bzImagePayload(Buffer.alloc(0x300)), undefined, 'no HdrS: not a bzImage');
});

test('crawl records the unsigned kernel image of the same version as the headers, with its digest', () => {
  const excerpt = readFileSync(
    new URL('../fixtures/bookworm-security-amd64-Packages.excerpt', import.meta.url),
    'utf8',
  );
  const kernels = kernelsFromIndex(
    parseStanzas(excerpt).map((stanza) => ({ stanza, baseUrl: 'http://mirror.invalid/debian-security' })),
    'debian-bookworm',
    'x86_64',
  );
  const k = kernels.find((e) => e.kernelrelease === '6.1.0-57-amd64')!;
  assert.deepEqual(k.kmatrix!.image, {
    name: 'linux-image-6.1.0-57-amd64-unsigned',
    version: '6.1.192-3',
    url: 'http://mirror.invalid/debian-security/pool/updates/main/l/linux/linux-image-6.1.0-57-amd64-unsigned_6.1.192-3_amd64.deb',
    sha256: 'f43a8dbe0b318a5491880233bb20982dc9cc8ef103dd361cd56499eea15c5191',
    size: 70584724,
  });
  // Not in this excerpt: no image is recorded rather than one guessed.
  assert.equal(kernels.find((e) => e.kernelrelease === '6.1.0-57-cloud-amd64')!.kmatrix!.image, undefined);
});

test('a KVM check that fails in any way falls back to TCG with one warning, and the verdict is remembered', async (t) => {
  const { chooseAccel } = await import('../../tools/kmatrix/boot/accel.ts');
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-accel-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const device = join(dir, 'kvm');
  await writeFile(device, '');
  const failures: [string, () => Promise<boolean>][] = [
    [
      'an assertion abort',
      async () => {
        throw new Error(
          "QEMU could not start the guest: qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.",
        );
      },
    ],
    ['a guest with no console, a hang or an early exit', async () => false],
  ];
  for (const [what, probe] of failures) {
    const store = await mkdtemp(join(dir, 'store-'));
    const lines: string[] = [];
    let probes = 0;
    const counted = async () => {
      probes++;
      return probe();
    };
    const options = {
      env: { PATH: process.env.PATH },
      log: (l: string) => lines.push(l),
      kvmDevice: device,
      hostArch: 'x64',
    };
    assert.equal(await chooseAccel('x86_64', store, counted, options), 'tcg', what);
    assert.equal(lines.filter((l) => l.startsWith('warning:')).length, 1, `${what}: ${lines.join('\n')}`);
    assert.match(lines.join('\n'), /warning: KVM is present but did not boot a kernel \(.+\); guests run under TCG/);
    // Remembered: no second check, same answer; only KMATRIX_ACCEL=kvm makes it an error.
    assert.equal(await chooseAccel('x86_64', store, counted, options), 'tcg');
    assert.equal(probes, 1, `${what}: checked once`);
    await assert.rejects(
      chooseAccel('x86_64', store, counted, { ...options, env: { ...options.env, KMATRIX_ACCEL: 'kvm' } }),
      /KMATRIX_ACCEL=kvm, but KVM did not boot a kernel on this machine/,
    );
  }
  // A KVM that works is used; an arm64 guest is never probed.
  const store = await mkdtemp(join(dir, 'store-'));
  const opts = { env: { PATH: process.env.PATH }, kvmDevice: device, hostArch: 'x64' };
  assert.equal(await chooseAccel('x86_64', store, async () => true, opts), 'kvm');
  assert.equal(await chooseAccel('aarch64', store, async () => assert.fail('probed an arm64 guest'), opts), 'tcg');
  // No /dev/kvm: TCG without a check.
  assert.equal(
    await chooseAccel('x86_64', store, async () => assert.fail('probed without /dev/kvm'), {
      ...opts,
      kvmDevice: join(dir, 'none'),
    }),
    'tcg',
  );
});
