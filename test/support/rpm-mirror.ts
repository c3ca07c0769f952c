/**
 * Local mirrors of RPM distros on 127.0.0.1, in each distro's real repository layout and made by
 * the real tools: rpmbuild packs the packages, createrepo_c writes repodata/, gpg signs
 * repomd.xml. These machines reach only Debian's archive, so the packages carry Debian's real
 * kernel headers and kernel, repackaged as that distro packages them: kernel-devel's one tree at
 * /usr/src/kernels/<uname -r>/ (Debian's flavour, common and kbuild trees merged, as Fedora's
 * kernel-devel is one tree) and kernel-core's /lib/modules/<uname -r>/vmlinuz. The release string
 * is made consistent: the headers say the distro's uname -r, and so does the kernel (its utsname
 * is patched in the uncompressed x86_64 kernel, which QEMU boots through PVH).
 */
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
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

/** One distro release of the mirror. */
export interface RpmRelease {
  distro: 'fedora' | 'almalinux' | 'amazonlinux';
  release: string;
  /** The dist tag in package releases: fc41, el9, amzn2023. */
  tag: string;
}

/** uname -r of the Debian kernel as `release` packages it: <upstream version>-<ABI number>.<tag>.x86_64. */
export function unameIn(kernel: DebianKernel, r: RpmRelease): { ver: string; rel: string; uname: string } {
  const ver = kernel.kmatrix.packageVersion.replace(/^\d+:/, '').replace(/-.*$/, '');
  const rel = `${kernel.kmatrix.abi.split('-').pop()}.${r.tag}`;
  return { ver, rel, uname: `${ver}-${rel}.x86_64` };
}

/** Debian's flavour, common and kbuild trees merged into one self-contained tree (symlinks resolved). */
async function mergedTree(work: string, kernel: DebianKernel, store: HeaderStore): Promise<string> {
  const root = join(work, 'root');
  await mkdir(root, { recursive: true });
  for (const p of kernel.kmatrix.packages.filter((h) => !h.hostArch || h.hostArch === 'x86_64'))
    await execa('cp', ['-a', `${await store.tree(p)}/.`, `${root}/`]);
  const common = join(root, `usr/src/linux-headers-${kernel.kmatrix.abi}-common`);
  const merged = join(work, 'merged');
  await mkdir(merged, { recursive: true });
  await execa('cp', ['-rL', '--remove-destination', `${common}/.`, `${merged}/`]);
  await execa('cp', [
    '-rL',
    '--remove-destination',
    `${join(root, 'usr/src', `linux-headers-${kernel.kernelrelease}`)}/.`,
    `${merged}/`,
  ]);
  // The flavour's Makefile only includes the common one by absolute path; Fedora's tree has the real one.
  await cp(join(common, 'Makefile'), join(merged, 'Makefile'), { force: true });
  await rm(join(merged, '.kernelvariables'), { force: true });
  return merged;
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

async function vmlinux(kernel: DebianKernel, store: HeaderStore, uname: string): Promise<Buffer> {
  const image = kernel.kmatrix.image!;
  const vmlinuz = await packageMember(await store.package(image), `boot/vmlinuz-${kernel.kernelrelease}`, image.name);
  const elf = await vmlinuxOf(vmlinuz);
  if (!elf) throw new Error(`cannot decompress the kernel in ${image.name}`);
  patchUtsRelease(elf, kernel.kernelrelease, uname);
  return elf;
}

async function rpmbuild(
  top: string,
  name: string,
  ver: string,
  rel: string,
  install: string,
  files: string,
): Promise<string> {
  await mkdir(join(top, 'SPECS'), { recursive: true });
  const spec = `Name: ${name}
Version: ${ver}
Release: ${rel}
Summary: ${name} repackaged from Debian for a kmatrix test mirror
License: GPL-2.0-only
BuildArch: x86_64
AutoReqProv: no
%define __os_install_post %{nil}
%define __arch_install_post %{nil}
%define debug_package %{nil}
%define _build_id_links none
%define _binary_payload w3.zstdio
%description
Debian's kernel, laid out as the distro ships it.
%install
${install}
%files
${files}
`;
  await writeFile(join(top, 'SPECS', `${name}.spec`), spec);
  await execa('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, join(top, 'SPECS', `${name}.spec`)]);
  return join(top, 'RPMS/x86_64', `${name}-${ver}-${rel}.x86_64.rpm`);
}

/** createrepo_c over `dir`, with repomd.xml signed by the test key (repomd.xml.asc). */
async function createrepo(dir: string, compress: 'gz' | 'xz', gnupgHome: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await execa('createrepo_c', ['--quiet', '--no-database', `--general-compress-type=${compress}`, dir]);
  const repomd = join(dir, 'repodata/repomd.xml');
  await execa('gpg', [
    '--batch',
    '--homedir',
    gnupgHome,
    '--yes',
    '--armor',
    '--detach-sign',
    '--output',
    `${repomd}.asc`,
    repomd,
  ]);
}

/**
 * Writes each release's repositories under `root` (served at `url`): Fedora's release and
 * updates trees, AlmaLinux's BaseOS (kernel-core) and AppStream (kernel-devel), Amazon Linux 2023's
 * core repository behind its mirror.list. Returns the env that points kmatrix at them.
 */
export async function buildRpmMirror(
  root: string,
  url: string,
  kernel: DebianKernel,
  releases: RpmRelease[],
  store: HeaderStore,
  key: { home: string; keyring: string },
): Promise<Record<string, string>> {
  const work = join(root, '.work');
  const merged = await mergedTree(work, kernel, store);
  const env: Record<string, string> = {};
  for (const r of releases) {
    const { ver, rel, uname } = unameIn(kernel, r);
    const top = join(work, r.distro);
    const devel = await rpmbuild(
      top,
      'kernel-devel',
      ver,
      rel,
      `mkdir -p %{buildroot}/usr/src/kernels/${uname}
cp -a ${merged}/. %{buildroot}/usr/src/kernels/${uname}/
echo ${uname} > %{buildroot}/usr/src/kernels/${uname}/include/config/kernel.release
echo '#define UTS_RELEASE "${uname}"' > %{buildroot}/usr/src/kernels/${uname}/include/generated/utsrelease.h`,
      `/usr/src/kernels/${uname}`,
    );
    await mkdir(join(work, 'kernel'), { recursive: true });
    await writeFile(join(work, 'kernel', uname), await vmlinux(kernel, store, uname));
    // Amazon Linux 2023 has no -core split: its `kernel` package holds vmlinuz.
    const imageName = r.distro === 'amazonlinux' ? 'kernel' : 'kernel-core';
    const image = await rpmbuild(
      top,
      imageName,
      ver,
      rel,
      `mkdir -p %{buildroot}/lib/modules/${uname}\ncp ${join(work, 'kernel', uname)} %{buildroot}/lib/modules/${uname}/vmlinuz`,
      `/lib/modules/${uname}/vmlinuz`,
    );
    const put = async (dir: string, rpms: string[], compress: 'gz' | 'xz') => {
      await mkdir(join(dir, 'Packages/k'), { recursive: true });
      for (const f of rpms) await cp(f, join(dir, 'Packages/k', f.split('/').pop()!));
      await createrepo(dir, compress, key.home);
    };
    if (r.distro === 'fedora') {
      await put(join(root, 'fedora/releases', r.release, 'Everything/x86_64/os'), [devel, image], 'xz');
      await put(join(root, 'fedora/updates', r.release, 'Everything/x86_64'), [], 'xz');
      Object.assign(env, { KMATRIX_FEDORA_MIRROR: `${url}/fedora`, KMATRIX_FEDORA_KEYRING: key.keyring });
    } else if (r.distro === 'almalinux') {
      await put(join(root, 'almalinux', r.release, 'BaseOS/x86_64/os'), [image], 'gz');
      await put(join(root, 'almalinux', r.release, 'AppStream/x86_64/os'), [devel], 'gz');
      Object.assign(env, { KMATRIX_ALMALINUX_MIRROR: `${url}/almalinux`, KMATRIX_ALMALINUX_KEYRING: key.keyring });
    } else {
      await put(join(root, 'amazonlinux/al2023/core/guids/5f3c0e1d/x86_64'), [devel, image], 'gz');
      const list = join(root, 'amazonlinux/al2023/core/mirrors/latest/x86_64/mirror.list');
      await mkdir(join(list, '..'), { recursive: true });
      await writeFile(list, `${url}/amazonlinux/al2023/core/guids/5f3c0e1d/$basearch/\n`);
      Object.assign(env, {
        KMATRIX_AMAZONLINUX_MIRROR: `${url}/amazonlinux`,
        KMATRIX_AMAZONLINUX_KEYRING: key.keyring,
      });
    }
  }
  await rm(work, { recursive: true, force: true });
  return env;
}
