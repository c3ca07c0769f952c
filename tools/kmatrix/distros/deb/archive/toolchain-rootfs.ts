/**
 * A Debian toolchain's root filesystem as one tarball, bit for bit the same on every machine that
 * gets the same package versions: mmdebstrap with a fixed SOURCE_DATE_EPOCH (it clamps every
 * mtime, sorts the members, writes numeric owners and removes logs, caches and apt lists), the
 * host's own files (resolv.conf, hostname) removed, and apt's sources written as the canonical
 * archive, not this machine's mirror. Signatures are checked against the archive keyring.
 */
import { readFile, rm } from 'node:fs/promises';
import { execa } from 'execa';
import { parseStanzas } from './deb822.ts';
import { KmatrixError } from '../../../core/errors.ts';
import { crossTriplets, type ToolchainSpec } from '../../../model/toolchain.ts';
import { debianArch } from '../arch.ts';
import type { Mirrors } from './mirrors.ts';
import { keyringOf } from './release.ts';

/** What the tarball's timestamps are clamped to: a constant, so it never depends on when it was built. */
export const TOOLCHAIN_EPOCH = 1_700_000_000;

/** The packages a kernel module build needs; kbuild calls plain `gcc`, so it is linked to the major. */
export function toolchainPackages(spec: ToolchainSpec): string[] {
  const gcc = `gcc-${spec.gcc}`;
  return [
    gcc,
    'make',
    'bc',
    'kmod',
    'libelf-dev',
    'libc6-dev',
    'dwarves',
    'patch',
    ...crossTriplets(spec).map((t) => `${gcc}-${t}`),
  ];
}

/** Shell for mmdebstrap's customize hooks ("$1" is the new root). */
function customizeHooks(spec: ToolchainSpec, release: string): string[] {
  const links = [
    `ln -sf gcc-${spec.gcc} "$1/usr/bin/gcc"`,
    ...crossTriplets(spec).map((t) => `ln -sf ${t}-gcc-${spec.gcc} "$1/usr/bin/${t}-gcc"`),
  ];
  const sources = ['debian', 'debian-security'].map((archive, i) => {
    const suites = i === 0 ? `${release} ${release}-updates` : `${release}-security`;
    return `Types: deb\\nURIs: http://deb.debian.org/${archive}\\nSuites: ${suites}\\nComponents: main\\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\\n`;
  });
  return [
    'rm -f "$1/etc/resolv.conf" "$1/etc/hostname" "$1/etc/apt/sources.list"',
    `printf '${sources.join('\\n')}' > "$1/etc/apt/sources.list.d/debian.sources"`,
    ...links,
    'chroot "$1" gcc --version | head -n1',
    ...crossTriplets(spec).map((t) => `chroot "$1" ${t}-gcc --version | head -n1`),
  ];
}

/** Installed packages and versions from a dpkg status file (name, or name:arch for a foreign one). */
export function installedPackages(status: string, hostArch: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of parseStanzas(status)) {
    if (!s.Package || !s.Version || !/\binstalled$/.test(s.Status ?? '')) continue;
    const foreign = s.Architecture && s.Architecture !== 'all' && s.Architecture !== hostArch;
    out[foreign ? `${s.Package}:${s.Architecture}` : s.Package] = s.Version;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Writes the tarball to `out`; returns every installed package with its version. */
export async function toolchainRootfs(
  spec: ToolchainSpec,
  mirrors: Mirrors,
  out: string,
  log: (line: string) => void,
): Promise<Record<string, string>> {
  const release = spec.base.release;
  const keyring = keyringOf();
  const source = (url: string, suite: string) => `deb [signed-by=${keyring}] ${url} ${suite} main`;
  const args = [
    '--mode=root',
    '--variant=apt',
    '--format=tar',
    `--architectures=${debianArch[spec.hostArch]}`,
    '--skip=output/dev',
    '--aptopt=Acquire::Languages "none"',
    `--include=${toolchainPackages(spec).join(',')}`,
    ...customizeHooks(spec, release).map((h) => `--customize-hook=${h}`),
    `--customize-hook=download /var/lib/dpkg/status ${out}.status`,
    release,
    out,
    source(mirrors.archive, release),
    source(mirrors.archive, `${release}-updates`),
    source(mirrors.security, `${release}-security`),
  ];
  log(
    `mmdebstrap ${release} ${debianArch[spec.hostArch]} with ${toolchainPackages(spec).join(' ')} (about half a minute)`,
  );
  const started = Date.now();
  const child = execa('mmdebstrap', args, { all: true, env: { SOURCE_DATE_EPOCH: String(TOOLCHAIN_EPOCH) } });
  const tail: string[] = [];
  child.all?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      // mmdebstrap's stages (I: lines: download, extract, install, cleanup), the compilers'
      // versions and its errors, each with the time since it started; not one line per package.
      if (/^(gcc|[a-z0-9_]+-linux-gnu-gcc)|^[IEW]: /.test(line))
        log(`  [${Math.round((Date.now() - started) / 1000)} s] ${line}`);
    }
  });
  try {
    await child;
  } catch (error) {
    const missing = (error as { code?: string }).code === 'ENOENT';
    throw new KmatrixError(missing ? '`mmdebstrap` is not installed' : `mmdebstrap of ${release} failed`, {
      stage: 'toolchain',
      cause: error,
      problems: missing ? [] : tail.slice(-8),
      remedy: missing
        ? 'install it: apt-get install -y mmdebstrap (tools/setup-host.sh does)'
        : `check that ${mirrors.archive}/dists/${release}/ is reachable and carries ${toolchainPackages(spec).join(', ')}`,
    });
  }
  try {
    return installedPackages(await readFile(`${out}.status`, 'utf8'), debianArch[spec.hostArch]);
  } finally {
    await rm(`${out}.status`, { force: true });
  }
}
