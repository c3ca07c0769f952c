/**
 * A target's modules as an RPM, made by rpmbuild (what akmods makes): `kmod-<driver>-<uname -r>`,
 * version 0, release the build id. Reproducible the way rpm itself offers: SOURCE_DATE_EPOCH as
 * build time and clamp for file times, a fixed build host, no debug or brp post-processing, and no
 * automatic dependencies (the modules need the kernel they were built for, which the name says).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';
import { type BuiltPackage, description, modulesDir, PACKAGE_EPOCH, type PackageInput } from './node-package.ts';

function spec(p: PackageInput, name: string, sources: string): string {
  const dir = modulesDir(p.kernelrelease);
  const files = [...p.modules.keys()].sort();
  return [
    `Name: ${name}`,
    'Version: 0',
    `Release: ${p.build}`,
    `Summary: ${description(p)}`,
    "License: the modules' own (modinfo -F license)",
    'AutoReqProv: no',
    '',
    '%description',
    `${description(p)}, built by kmatrix (build ${p.build}); installed under ${dir}/.`,
    '',
    '%install',
    `mkdir -p %{buildroot}${dir}`,
    ...files.map((f) => `install -m 0644 ${sources}/${f} %{buildroot}${dir}/${f}`),
    '',
    // depmod for the package's kernel, whether or not it runs; on removal it may be gone already.
    '%post',
    `depmod -a ${p.kernelrelease}`,
    '',
    '%postun',
    `depmod -a ${p.kernelrelease} || :`,
    '',
    '%files',
    '%defattr(0644,root,root,0755)',
    ...files.map((f) => `${dir}/${f}`),
    '',
  ].join('\n');
}

const DEFINES = {
  debug_package: '%{nil}',
  __os_install_post: '%{nil}',
  _build_id_links: 'none',
  _buildhost: 'kmatrix',
  use_source_date_epoch_as_buildtime: '1',
  clamp_mtime_to_source_date_epoch: '1',
  _binary_payload: 'w9.xzdio',
};

export async function rpmPackage(p: PackageInput): Promise<BuiltPackage> {
  const name = `kmod-${p.driver}-${p.kernelrelease}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._+~^-]*$/.test(name))
    throw new KmatrixError(`"${name}" cannot be an RPM name`, { stage: 'publish' });
  const work = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-'));
  try {
    const sources = join(work, 'sources');
    await mkdir(sources);
    for (const [file, body] of p.modules) await writeFile(join(sources, file), body);
    await writeFile(join(work, 'kmod.spec'), spec(p, name, sources));
    const defines = Object.entries({ ...DEFINES, _topdir: join(work, 'top') }).flatMap(([k, v]) => [
      '--define',
      `${k} ${v}`,
    ]);
    const built = await execa(
      'rpmbuild',
      ['-bb', '--quiet', '--target', `${p.arch}-linux`, ...defines, join(work, 'kmod.spec')],
      { reject: false, all: true, env: { SOURCE_DATE_EPOCH: String(PACKAGE_EPOCH) } },
    );
    const dir = join(work, 'top/RPMS', p.arch);
    const [file] = built.exitCode === 0 ? await readdir(dir) : [];
    if (!file)
      throw new KmatrixError(`rpmbuild could not build ${name}: ${built.all?.trim().split('\n').slice(-3).join(' ')}`, {
        stage: 'publish',
      });
    return { format: 'rpm', name, file, body: await readFile(join(dir, file)) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
