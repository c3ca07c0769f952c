/**
 * A local Ubuntu mirror on 127.0.0.1 in Ubuntu's real layout, made by the real tools: dpkg-deb
 * packs the packages into pool/main/l/<source>/, apt-ftparchive writes each suite's Packages and
 * Release, gpg clearsigns InRelease with a test key. The packages carry Debian's real kernel
 * headers and kernel (test/support/repackage.ts), repackaged the way Ubuntu ships a kernel:
 *
 * - linux-headers-<abi> (generic) or linux-<x>-headers-<abi> (derivatives such as aws), Architecture
 *   all: the shared tree at /usr/src/<that name>/;
 * - linux-headers-<abi>-<flavour>: the flavour's tree with the host programs in it (Ubuntu has no
 *   kbuild package), its Makefile including the shared one, depending on the shared package (=);
 * - linux-image-unsigned-<abi>-<flavour>: /boot/vmlinuz-<abi>-<flavour>.
 *
 * The release string is made consistent: headers and kernel both say <abi>-<flavour>.
 */
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { signSuite } from './apt-release.ts';
import { debianRoot, type DebianKernel, kernelAs, setTreeRelease, upstreamOf } from './repackage.ts';

/** An Ubuntu kernel of the mirror: its flavour, and the ABI number it is published under. */
export interface UbuntuKernel {
  flavour: 'generic' | 'aws';
  abiNumber: string;
}

export function ubuntuNames(kernel: DebianKernel, k: UbuntuKernel) {
  const { version } = upstreamOf(kernel);
  const abi = `${kernel.kmatrix.abi.replace(/-\d+$/, '')}-${k.abiNumber}`;
  const common = k.flavour === 'generic' ? `linux-headers-${abi}` : `linux-${k.flavour}-headers-${abi}`;
  return {
    abi,
    uname: `${abi}-${k.flavour}`,
    version: `${abi}.${version.split('.').pop()}`,
    common,
    source: k.flavour === 'generic' ? 'linux' : `linux-${k.flavour}`,
  };
}

async function debOf(dir: string, out: string, control: Record<string, string>): Promise<void> {
  await mkdir(join(dir, 'DEBIAN'), { recursive: true });
  const text = Object.entries(control)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
  await writeFile(
    join(dir, 'DEBIAN/control'),
    `${text}\nMaintainer: kmatrix tests <t@example.invalid>\nDescription: Debian's kernel, laid out as Ubuntu ships it\n`,
  );
  await mkdir(join(out, '..'), { recursive: true });
  await execa('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '--build', dir, out]);
}

/**
 * Writes dists/<codename>{,-updates,-security} and pool/ under `<root>/ubuntu` (amd64) or
 * `<root>/ubuntu-ports` (arm64, as Ubuntu splits them); returns the env that points kmatrix at it.
 */
export async function buildUbuntuMirror(
  root: string,
  url: string,
  kernel: DebianKernel,
  kernels: UbuntuKernel[],
  codename: string,
  store: HeaderStore,
  key: { home: string; keyring: string },
): Promise<Record<string, string>> {
  const arch = kernel.kmatrix.arch;
  const debArch = arch === 'x86_64' ? 'amd64' : 'arm64';
  const work = join(root, `.work-ubuntu-${debArch}`);
  const debian = await debianRoot(work, kernel, store);
  const kbuild = join(debian.root, 'usr/lib', `linux-kbuild-${kernel.kmatrix.abi.replace(/^(\d+\.\d+).*/, '$1')}`);
  const archive = join(root, arch === 'x86_64' ? 'ubuntu' : 'ubuntu-ports');
  for (const k of kernels) {
    const n = ubuntuNames(kernel, k);
    const pool = join(archive, 'pool/main/l', n.source);
    // The shared tree: Debian's -common, its links into kbuild resolved.
    const commonDir = join(work, n.common);
    await mkdir(join(commonDir, 'usr/src'), { recursive: true });
    await execa('cp', ['-rL', `${debian.common}/.`, join(commonDir, 'usr/src', n.common)]);
    await debOf(commonDir, join(pool, `${n.common}_${n.version}_all.deb`), {
      Package: n.common,
      Version: n.version,
      Architecture: 'all',
      Section: 'devel',
    });
    // The flavour's tree, with the host programs (Debian's kbuild) inside it.
    const flavourDir = join(work, `linux-headers-${n.uname}`);
    const tree = join(flavourDir, 'usr/src', `linux-headers-${n.uname}`);
    await mkdir(tree, { recursive: true });
    await execa('cp', ['-a', `${debian.flavour}/.`, tree]);
    for (const sub of ['scripts', 'tools']) {
      await rm(join(tree, sub), { force: true, recursive: true });
      await execa('cp', ['-rL', join(kbuild, sub), join(tree, sub)]);
    }
    await rm(join(tree, '.kernelvariables'), { force: true });
    await writeFile(join(tree, 'Makefile'), `include /usr/src/${n.common}/Makefile\n`);
    await setTreeRelease(tree, n.uname);
    await debOf(flavourDir, join(pool, `linux-headers-${n.uname}_${n.version}_${debArch}.deb`), {
      Package: `linux-headers-${n.uname}`,
      Version: n.version,
      Architecture: debArch,
      Section: 'devel',
      Depends: `${n.common} (= ${n.version}), libc6 (>= 2.34), libelf1 (>= 0.142)`,
    });
    const imageDir = join(work, `linux-image-unsigned-${n.uname}`);
    await mkdir(join(imageDir, 'boot'), { recursive: true });
    await writeFile(join(imageDir, 'boot', `vmlinuz-${n.uname}`), await kernelAs(kernel, store, n.uname));
    await debOf(imageDir, join(pool, `linux-image-unsigned-${n.uname}_${n.version}_${debArch}.deb`), {
      Package: `linux-image-unsigned-${n.uname}`,
      Version: n.version,
      Architecture: debArch,
      Section: 'kernel',
    });
  }
  for (const suite of [codename, `${codename}-updates`, `${codename}-security`]) {
    const dists = join(archive, 'dists', suite);
    const binary = join(dists, `main/binary-${debArch}`);
    await mkdir(binary, { recursive: true });
    const packages =
      suite === codename ? (await execa('apt-ftparchive', ['packages', 'pool'], { cwd: archive })).stdout : '';
    await writeFile(join(binary, 'Packages'), packages ? `${packages}\n` : '');
    await execa('xz', ['-kf', join(binary, 'Packages')]);
    await signSuite(dists, { suite, codename, origin: 'Ubuntu', byHash: true }, key.home);
  }
  await rm(work, { recursive: true, force: true });
  await cp(key.keyring, join(root, 'ubuntu-archive-keyring.gpg'));
  const keyring = { KMATRIX_UBUNTU_KEYRING: join(root, 'ubuntu-archive-keyring.gpg') };
  return arch === 'x86_64'
    ? { ...keyring, KMATRIX_UBUNTU_MIRROR: `${url}/ubuntu`, KMATRIX_UBUNTU_SECURITY_MIRROR: `${url}/ubuntu` }
    : { ...keyring, KMATRIX_UBUNTU_PORTS_MIRROR: `${url}/ubuntu-ports` };
}
