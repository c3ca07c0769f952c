/**
 * A target's modules as a Debian binary package, made by dpkg-deb (what `dkms mkbmdeb` makes):
 * `<driver>-modules-<uname -r>_0+<build>_<arch>.deb`. Owners root, modes fixed, every mtime and
 * the ar members' dates at PACKAGE_EPOCH (SOURCE_DATE_EPOCH), so the bytes depend on the modules only.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';
import { type BuiltPackage, description, modulesDir, PACKAGE_EPOCH, type PackageInput } from './node-package.ts';

const DEB_ARCH = { x86_64: 'amd64', aarch64: 'arm64' } as const;

function control(p: PackageInput, name: string, version: string, kib: number): string {
  return [
    `Package: ${name}`,
    `Version: ${version}`,
    `Architecture: ${DEB_ARCH[p.arch]}`,
    'Maintainer: kmatrix <kmatrix@localhost>',
    'Section: kernel',
    'Priority: optional',
    `Installed-Size: ${kib}`,
    `Description: ${description(p)}`,
    ` Built by kmatrix (build ${p.build}); installed under ${modulesDir(p.kernelrelease)}/.`,
    '',
  ].join('\n');
}

// depmod for the package's kernel, whether or not it is the running one; on removal the kernel
// may be gone already, which is not the package's failure.
const postinst = (kver: string) => `#!/bin/sh\nset -e\nif [ "$1" = configure ]; then depmod -a ${kver}; fi\n`;
const postrm = (kver: string) =>
  `#!/bin/sh\nset -e\nif [ "$1" = remove ] || [ "$1" = purge ]; then depmod -a ${kver} || true; fi\n`;

/** Sets every entry's mtime to PACKAGE_EPOCH (dpkg-deb keeps them in the data tar). */
async function pinTimes(paths: string[]): Promise<void> {
  for (const p of paths) await utimes(p, PACKAGE_EPOCH, PACKAGE_EPOCH);
}

export async function debPackage(p: PackageInput): Promise<BuiltPackage> {
  const name = `${p.driver}-modules-${p.kernelrelease}`.toLowerCase();
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name))
    throw new KmatrixError(`"${name}" cannot be a Debian package name`, {
      stage: 'publish',
      remedy: 'a .deb is for Debian-family kernels; leave deb out of --packages for this target',
    });
  const version = `0+${p.build}`;
  const work = await mkdtemp(join(tmpdir(), 'kmatrix-deb-'));
  try {
    const root = join(work, 'root');
    const dir = join(root, modulesDir(p.kernelrelease));
    await mkdir(join(root, 'DEBIAN'), { recursive: true });
    await mkdir(dir, { recursive: true });
    let bytes = 0;
    const entries = [root, join(root, 'DEBIAN'), join(root, 'lib'), join(root, 'lib/modules'), join(dir, '..'), dir];
    for (const [file, body] of [...p.modules].sort(([a], [b]) => (a < b ? -1 : 1))) {
      await writeFile(join(dir, file), body, { mode: 0o644 });
      await chmod(join(dir, file), 0o644);
      bytes += body.length;
      entries.push(join(dir, file));
    }
    for (const [script, text] of [
      ['postinst', postinst(p.kernelrelease)],
      ['postrm', postrm(p.kernelrelease)],
    ] as const) {
      await writeFile(join(root, 'DEBIAN', script), text);
      await chmod(join(root, 'DEBIAN', script), 0o755);
      entries.push(join(root, 'DEBIAN', script));
    }
    await writeFile(join(root, 'DEBIAN/control'), control(p, name, version, Math.ceil(bytes / 1024)));
    entries.push(join(root, 'DEBIAN/control'));
    for (const d of entries.slice(0, 6)) await chmod(d, 0o755);
    await pinTimes(entries);
    const file = `${name}_${version}_${DEB_ARCH[p.arch]}.deb`;
    const built = await execa('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, join(work, file)], {
      reject: false,
      all: true,
      env: { SOURCE_DATE_EPOCH: String(PACKAGE_EPOCH) },
    });
    if (built.exitCode !== 0)
      throw new KmatrixError(`dpkg-deb could not build ${file}: ${built.all?.trim().split('\n').slice(-3).join(' ')}`, {
        stage: 'publish',
      });
    return { format: 'deb', name, file, body: await readFile(join(work, file)) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
