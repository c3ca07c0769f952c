/**
 * Debian's real kernel headers and kernel, taken apart to be repackaged the way another distro
 * ships them (test/support/rpm-mirror.ts, ubuntu-mirror.ts): these machines reach only Debian's
 * archive, so the other distros' test mirrors carry Debian's bytes in their own layouts, with the
 * release string made consistent.
 */
import { mkdir } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { execa } from 'execa';
import { vmlinuxOf } from '../../tools/kmatrix/boot/kernel-image.ts';
import type { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { packageMember } from '../../tools/kmatrix/packages/member.ts';
import type { HeaderPackage, ImagePackage } from '../../tools/kmatrix/model/kernel-list.ts';
import type { Arch } from '../../tools/kmatrix/model/names.ts';

/** A Debian kernel as `kmatrix crawl deb` lists it (with its image). */
export interface DebianKernel {
  kernelrelease: string;
  kmatrix: {
    arch: Arch;
    abi: string;
    flavour: string;
    packageVersion: string;
    packages: HeaderPackage[];
    image?: ImagePackage;
  };
}

/** The upstream version (6.1.192) and ABI number (57) of a Debian kernel. */
export function upstreamOf(kernel: DebianKernel): { version: string; abiNumber: string } {
  const version = kernel.kmatrix.packageVersion.replace(/^\d+:/, '');
  // 6.1.0-57 carries an ABI number; 6.12.117+deb12 (Debian's newer naming) has none, and its
  // package revision (6.12.117-1~deb12u1 → 1) stands in for it.
  const abi = kernel.kmatrix.abi;
  return {
    version: version.replace(/-.*$/, ''),
    abiNumber: abi.includes('-') ? abi.split('-').pop()! : version.replace(/^[^-]*-(\d+).*$/, '$1'),
  };
}

/**
 * The kernel's header packages unpacked into one root (`<work>/root/usr/src/…`,
 * `usr/lib/linux-kbuild-…`), with the kbuild (host programs) of the kernel's own arch: what
 * Ubuntu's and the RPM distros' header packages carry.
 */
export async function debianRoot(work: string, kernel: DebianKernel, store: HeaderStore) {
  const root = join(work, 'root');
  await mkdir(root, { recursive: true });
  for (const p of kernel.kmatrix.packages.filter((h) => !h.hostArch || h.hostArch === kernel.kmatrix.arch))
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
 * The Debian kernel, uncompressed (x86_64: an ELF QEMU enters through PVH; aarch64: the Image,
 * which Debian ships uncompressed), saying `uname` as its release: what the other distro's kernel
 * package carries.
 */
export async function kernelAs(kernel: DebianKernel, store: HeaderStore, uname: string): Promise<Buffer> {
  const image = kernel.kmatrix.image!;
  const vmlinuz = await packageMember(await store.package(image), `boot/vmlinuz-${kernel.kernelrelease}`, image.name);
  const gzipped = vmlinuz[0] === 0x1f && vmlinuz[1] === 0x8b;
  const plain =
    kernel.kmatrix.arch === 'aarch64'
      ? gzipped
        ? gunzipSync(vmlinuz)
        : Buffer.from(vmlinuz)
      : await vmlinuxOf(vmlinuz);
  if (!plain) throw new Error(`cannot decompress the kernel in ${image.name}`);
  patchUtsRelease(plain, kernel.kernelrelease, uname);
  return plain;
}

/** Sets the release a header tree says (what kbuild puts in vermagic). */
export async function setTreeRelease(tree: string, uname: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(tree, 'include/config/kernel.release'), `${uname}\n`);
  await writeFile(join(tree, 'include/generated/utsrelease.h'), `#define UTS_RELEASE "${uname}"\n`);
}
