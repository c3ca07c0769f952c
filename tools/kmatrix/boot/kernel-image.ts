/**
 * The kernel a target's module was built for, ready for `qemu -kernel`: taken from the verified
 * kernel image package in the store (only the kernel file; the modules that make up most of the
 * package are never unpacked) and kept under <store>/boot/<sha256 of the .deb>/.
 *
 * x86_64: an emulated CPU spends ~6 s decompressing a bzImage before the kernel's first line, more
 * than the whole test after it. The bzImage header says where its compressed vmlinux is; we
 * decompress it once and boot the ELF through its PVH entry point (a Xen ELF note QEMU honours),
 * skipping both the firmware's real-mode loader and the decompressor. A kernel without PVH is
 * booted as the bzImage it is.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { HeaderStore } from '../packages/store.ts';
import { packageMember } from '../packages/member.ts';
import type { ImagePackage } from '../model/kernel-list.ts';
import type { Arch } from '../model/names.ts';

export interface BootableKernel {
  path: string;
  /** How QEMU will enter it. */
  format: 'pvh-elf' | 'bzImage' | 'arm64-image';
}

/** Where a bzImage keeps its compressed vmlinux (boot protocol ≥ 2.08), or undefined. */
export function bzImagePayload(image: Buffer): Buffer | undefined {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS' || image.readUInt16LE(0x206) < 0x0208)
    return undefined;
  const setupSects = image.readUInt8(0x1f1) || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  return start + length <= image.length ? image.subarray(start, start + length) : undefined;
}

async function decompress(payload: Buffer): Promise<Buffer | undefined> {
  if (payload[0] === 0x1f && payload[1] === 0x8b) return gunzipSync(payload);
  const tool = payload.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
    ? ['xz', '-dc']
    : payload.readUInt32LE(0) === 0xfd2fb528
      ? ['zstd', '-dcq']
      : undefined;
  if (!tool) return undefined;
  const { execa } = await import('execa');
  // The payload may carry the decompressor's size trailer: a tool complaining about it still
  // wrote the whole vmlinux, which the ELF check below verifies.
  const r = await execa(tool[0]!, tool.slice(1), {
    input: payload,
    encoding: 'buffer',
    reject: false,
    maxBuffer: 1024 * 1024 * 1024,
  });
  if ((r as { code?: string }).code === 'ENOENT') return undefined;
  return Buffer.from(r.stdout);
}

/** True when an x86_64 ELF carries XEN_ELFNOTE_PHYS32_ENTRY, QEMU's PVH entry point. */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    const offset = Number(elf.readBigUInt64LE(ph + 8));
    const end = Math.min(offset + Number(elf.readBigUInt64LE(ph + 32)), elf.length);
    for (let at = offset; at + 12 <= end; ) {
      const namesz = elf.readUInt32LE(at);
      const descsz = elf.readUInt32LE(at + 4);
      const type = elf.readUInt32LE(at + 8);
      const name = elf.toString('latin1', at + 12, at + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === 18) return true;
      at += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
    }
  }
  return false;
}

/** The uncompressed vmlinux ELF inside a bzImage, if its compression is one we read. */
export async function vmlinuxOf(bzImage: Buffer): Promise<Buffer | undefined> {
  const payload = bzImagePayload(bzImage);
  return payload && (await decompress(payload));
}

async function prepare(vmlinuz: Buffer, arch: Arch): Promise<{ data: Buffer; format: BootableKernel['format'] }> {
  if (arch === 'aarch64') return { data: vmlinuz, format: 'arm64-image' }; // QEMU loads Image and Image.gz alike
  // A package may ship the kernel uncompressed (an ELF vmlinux), which QEMU enters the same way.
  if (hasPvhNote(vmlinuz)) return { data: vmlinuz, format: 'pvh-elf' };
  const elf = await vmlinuxOf(vmlinuz);
  if (elf && hasPvhNote(elf)) return { data: elf, format: 'pvh-elf' };
  return { data: vmlinuz, format: 'bzImage' };
}

/** `file` is the kernel's path inside the image package (its distro family says where). */
export async function bootableKernel(
  store: HeaderStore,
  image: ImagePackage,
  file: string,
  arch: Arch,
): Promise<BootableKernel> {
  const dir = join(store.dir, 'boot', image.sha256);
  const done = join(dir, 'kernel.json');
  if (existsSync(done)) {
    const { format } = JSON.parse(await readFile(done, 'utf8')) as { format: BootableKernel['format'] };
    return { path: join(dir, 'kernel'), format };
  }
  const deb = await store.package(image);
  const vmlinuz = await packageMember(deb, file, `${image.name} ${image.version}`);
  const { data, format } = await prepare(vmlinuz, arch);
  // All or nothing: a folder appears complete under its final name, or not at all.
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  try {
    await writeFile(join(tmp, 'kernel'), data);
    await writeFile(
      join(tmp, 'kernel.json'),
      `${JSON.stringify({ image: image.name, version: image.version, format })}\n`,
    );
    await rename(tmp, dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error; // another test prepared it first
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { path: join(dir, 'kernel'), format };
}

/** The guest's static busybox, from its verified package, kept beside the kernels. */
export async function guestBusybox(store: HeaderStore, pkg: ImagePackage): Promise<Buffer> {
  const file = join(store.dir, 'boot', pkg.sha256, 'busybox');
  if (existsSync(file)) return readFile(file);
  const deb = await store.package(pkg);
  const data = await packageMember(deb, 'bin/busybox', `${pkg.name} ${pkg.version}`);
  await mkdir(join(store.dir, 'boot', pkg.sha256), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, data, { mode: 0o755 });
  await rename(tmp, file);
  return data;
}
