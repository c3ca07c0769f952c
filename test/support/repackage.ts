/**
 * Debian's real kernel headers and kernel, taken apart to be repackaged the way another distro
 * ships them (test/support/rpm-mirror.ts, ubuntu-mirror.ts): these machines reach only Debian's
 * archive, so the other distros' test mirrors carry Debian's bytes in their own layouts, with the
 * release string made consistent.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { vmlinuxOf } from '../../tools/kmatrix/boot/kernel-image.ts';
import type { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { packageMember } from '../../tools/kmatrix/packages/member.ts';
import type { HeaderPackage, ImagePackage } from '../../tools/kmatrix/model/kernel-list.ts';

/** A Debian kernel as `kmatrix crawl deb` lists it (x86_64, with its image). */
export interface DebianKernel {
  kernelrelease: string;
  kmatrix: { abi: string; flavour: string; packageVersion: string; packages: HeaderPackage[]; image?: ImagePackage };
}

/** The upstream version (6.1.192) and ABI number (57) of a Debian kernel. */
export function upstreamOf(kernel: DebianKernel): { version: string; abiNumber: string } {
  return {
    version: kernel.kmatrix.packageVersion.replace(/^\d+:/, '').replace(/-.*$/, ''),
    abiNumber: kernel.kmatrix.abi.split('-').pop()!,
  };
}

/** The kernel's x86_64 header packages unpacked into one root (`<work>/root/usr/src/…`, `usr/lib/linux-kbuild-…`). */
export async function debianRoot(work: string, kernel: DebianKernel, store: HeaderStore) {
  const root = join(work, 'root');
  await mkdir(root, { recursive: true });
  for (const p of kernel.kmatrix.packages.filter((h) => !h.hostArch || h.hostArch === 'x86_64'))
    await execa('cp', ['-a', `${await store.tree(p)}/.`, `${root}/`]);
  return {
    root,
    common: join(root, `usr/src/linux-headers-${kernel.kmatrix.abi}-common`),
    flavour: join(root, `usr/src/linux-headers-${kernel.kernelrelease}`),
  };
}

/** Sets every utsname release field (after "Linux" and "(none)", 65 bytes each) to `uname`. */
export function patchUtsRelease(elf: Buffer, from: string, uname: string): number {
  if (uname.length > 64) throw new Error(`${uname} is longer than a utsname field`);
  const field = (s: string) => Buffer.concat([Buffer.from(s), Buffer.alloc(65 - s.length)]);
  let patched = 0;
  for (let at = elf.indexOf(field(from)); at >= 0; at = elf.indexOf(field(from), at + 1)) {
    if (
      elf.toString('latin1', at - 130, at - 124) === 'Linux\0' &&
      elf.toString('latin1', at - 65, at - 58) === '(none)\0'
    ) {
      field(uname).copy(elf, at);
      patched++;
    }
  }
  if (patched === 0) throw new Error(`no utsname with release ${from} in the kernel`);
  return patched;
}

/**
 * The Debian kernel, uncompressed (an ELF QEMU enters through PVH), saying `uname` as its release:
 * what the other distro's kernel package carries.
 */
export async function kernelAs(kernel: DebianKernel, store: HeaderStore, uname: string): Promise<Buffer> {
  const image = kernel.kmatrix.image!;
  const vmlinuz = await packageMember(await store.package(image), `boot/vmlinuz-${kernel.kernelrelease}`, image.name);
  const elf = await vmlinuxOf(vmlinuz);
  if (!elf) throw new Error(`cannot decompress the kernel in ${image.name}`);
  patchUtsRelease(elf, kernel.kernelrelease, uname);
  return elf;
}

/** Sets the release a header tree says (what kbuild puts in vermagic). */
export async function setTreeRelease(tree: string, uname: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(tree, 'include/config/kernel.release'), `${uname}\n`);
  await writeFile(join(tree, 'include/generated/utsrelease.h'), `#define UTS_RELEASE "${uname}"\n`);
}
