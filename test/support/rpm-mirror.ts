/**
 * Local mirrors of RPM distros on 127.0.0.1, in each distro's real repository layout and made by
 * the real tools: rpmbuild packs the packages, createrepo_c writes repodata/, gpg signs
 * repomd.xml. These machines reach only Debian's archive, so the packages carry Debian's real
 * kernel headers and kernel, repackaged as that distro packages them: kernel-devel's one tree at
 * /usr/src/kernels/<uname -r>/ (Debian's flavour, common and kbuild trees merged, as Fedora's
 * kernel-devel is one tree) and kernel-core's /lib/modules/<uname -r>/vmlinuz. The release string
 * is made consistent: the headers say the distro's uname -r, and so does the kernel (its utsname
 * is patched in the uncompressed kernel). One call writes one arch; both share the trees.
 */
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { debianRoot, type DebianKernel, kernelAs, setTreeRelease, upstreamOf } from './repackage.ts';

export type { DebianKernel } from './repackage.ts';

/** One distro release of the mirror. */
export interface RpmRelease {
  distro: 'fedora' | 'almalinux' | 'amazonlinux';
  release: string;
  /** The dist tag in package releases: fc41, el9, amzn2023. */
  tag: string;
  /** A parallel kernel stream named in the package names: Amazon Linux 2023's kernel6.12(-devel). */
  stream?: string;
}

/** uname -r of the Debian kernel as `release` packages it: <upstream version>-<ABI number>.<tag>.<arch>. */
export function unameIn(kernel: DebianKernel, r: RpmRelease): { ver: string; rel: string; uname: string } {
  const { version, abiNumber } = upstreamOf(kernel);
  const rel = `${abiNumber}.${r.tag}`;
  return { ver: version, rel, uname: `${version}-${rel}.${kernel.kmatrix.arch}` };
}

/** Debian's flavour, common and kbuild trees merged into one self-contained tree (symlinks resolved), as Fedora's kernel-devel is. */
async function mergedTree(work: string, kernel: DebianKernel, store: HeaderStore): Promise<string> {
  const { common, flavour } = await debianRoot(work, kernel, store);
  const merged = join(work, 'merged');
  await mkdir(merged, { recursive: true });
  await execa('cp', ['-rL', '--remove-destination', `${common}/.`, `${merged}/`]);
  await execa('cp', ['-rL', '--remove-destination', `${flavour}/.`, `${merged}/`]);
  // The flavour's Makefile only includes the common one by absolute path; Fedora's tree has the real one.
  await cp(join(common, 'Makefile'), join(merged, 'Makefile'), { force: true });
  await rm(join(merged, '.kernelvariables'), { force: true });
  return merged;
}

async function rpmbuild(
  top: string,
  arch: string,
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
  await execa('rpmbuild', [
    '-bb',
    '--quiet',
    '--target',
    arch,
    '--define',
    `_topdir ${top}`,
    join(top, 'SPECS', `${name}.spec`),
  ]);
  return join(top, 'RPMS', arch, `${name}-${ver}-${rel}.${arch}.rpm`);
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
 * updates trees, AlmaLinux's BaseOS (kernel-core) and AppStream (kernel-devel), Amazon Linux
 * 2023's core repository and Amazon Linux 2's core and kernel-5.10/5.15 extras, each behind its
 * mirror.list. Returns the env that points kmatrix at them.
 */
export async function buildRpmMirror(
  root: string,
  url: string,
  kernel: DebianKernel,
  releases: RpmRelease[],
  store: HeaderStore,
  key: { home: string; keyring: string },
): Promise<Record<string, string>> {
  const arch = kernel.kmatrix.arch;
  const work = join(root, `.work-rpm-${arch}`);
  const merged = await mergedTree(work, kernel, store);
  const env: Record<string, string> = {};
  for (const r of releases) {
    const { ver, rel, uname } = unameIn(kernel, r);
    const top = join(work, r.distro);
    await setTreeRelease(merged, uname);
    const base = `kernel${r.stream ?? ''}`;
    const devel = await rpmbuild(
      top,
      arch,
      `${base}-devel`,
      ver,
      rel,
      `mkdir -p %{buildroot}/usr/src/kernels/${uname}\ncp -a ${merged}/. %{buildroot}/usr/src/kernels/${uname}/`,
      `/usr/src/kernels/${uname}`,
    );
    await mkdir(join(work, 'kernel'), { recursive: true });
    await writeFile(join(work, 'kernel', uname), await kernelAs(kernel, store, uname));
    // Amazon Linux has no -core split: its `kernel` package holds vmlinuz, in /boot on Amazon Linux 2.
    const imageName = r.distro === 'amazonlinux' ? base : `${base}-core`;
    const vmlinuz = r.release === '2' ? `/boot/vmlinuz-${uname}` : `/lib/modules/${uname}/vmlinuz`;
    const image = await rpmbuild(
      top,
      arch,
      imageName,
      ver,
      rel,
      `mkdir -p %{buildroot}${vmlinuz.replace(/\/[^/]+$/, '')}\ncp ${join(work, 'kernel', uname)} %{buildroot}${vmlinuz}`,
      vmlinuz,
    );
    const put = async (dir: string, rpms: string[], compress: 'gz' | 'xz') => {
      await mkdir(join(dir, 'Packages/k'), { recursive: true });
      for (const f of rpms) await cp(f, join(dir, 'Packages/k', f.split('/').pop()!));
      await createrepo(dir, compress, key.home);
    };
    if (r.distro === 'fedora') {
      await put(join(root, 'fedora/releases', r.release, 'Everything', arch, 'os'), [devel, image], 'xz');
      await put(join(root, 'fedora/updates', r.release, 'Everything', arch), [], 'xz');
      Object.assign(env, { KMATRIX_FEDORA_MIRROR: `${url}/fedora`, KMATRIX_FEDORA_KEYRING: key.keyring });
    } else if (r.distro === 'almalinux') {
      await put(join(root, 'almalinux', r.release, 'BaseOS', arch, 'os'), [image], 'gz');
      await put(join(root, 'almalinux', r.release, 'AppStream', arch, 'os'), [devel], 'gz');
      Object.assign(env, { KMATRIX_ALMALINUX_MIRROR: `${url}/almalinux`, KMATRIX_ALMALINUX_KEYRING: key.keyring });
    } else {
      // Each repository behind a mirror.list naming today's copy; Amazon Linux 2's 5.10 and 5.15
      // kernels are in their extras repositories, its core repository has none of them.
      const repos =
        r.release === '2'
          ? { '2/core': [], '2/extras/kernel-5.10': [devel, image], '2/extras/kernel-5.15': [] }
          : { 'al2023/core': [devel, image] };
      for (const [repo, rpms] of Object.entries(repos)) {
        const copy = `${repo}/guids/5f3c0e1d/${arch}`;
        await put(join(root, 'amazonlinux', copy), rpms, 'gz');
        const list = join(
          root,
          'amazonlinux',
          repo,
          r.release === '2' ? 'latest' : 'mirrors/latest',
          arch,
          'mirror.list',
        );
        await mkdir(join(list, '..'), { recursive: true });
        await writeFile(list, `${url}/amazonlinux/${copy.replace(new RegExp(`${arch}$`), '$basearch')}/\n`);
      }
      Object.assign(env, {
        KMATRIX_AMAZONLINUX_MIRROR: `${url}/amazonlinux`,
        KMATRIX_AMAZONLINUX_KEYRING: key.keyring,
      });
    }
  }
  await rm(work, { recursive: true, force: true });
  return env;
}
