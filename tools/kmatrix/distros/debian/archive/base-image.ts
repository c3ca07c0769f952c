/**
 * Base images without a public registry: debootstrap a minimal Debian from this machine's own
 * mirror and `docker import` it. Reused while the tag exists; `--force` makes a fresh one.
 */
import type Docker from 'dockerode';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../../../core/errors.ts';
import { followProgress, imageExists } from '../../../core/docker.ts';
import type { Mirrors } from './mirrors.ts';
import { keyringOf } from './release.ts';

export function baseImageTag(release: string): string {
  return `kmatrix-base/debian:${release}`;
}

export async function ensureBaseImage(
  docker: Docker,
  release: string,
  mirrors: Mirrors,
  log: (line: string) => void,
  force = false,
): Promise<string> {
  const tag = baseImageTag(release);
  if (!force && (await imageExists(docker, tag))) {
    log(`base image ${tag} already present`);
    return tag;
  }
  const dir = await mkdtemp(join(tmpdir(), `kmatrix-debootstrap-${release}-`));
  try {
    log(`debootstrap --variant=minbase ${release} from ${mirrors.archive} (about half a minute)`);
    try {
      // The toolchain's own packages through the same chain as the crawl's: the Release signature
      // is checked against the archive keyring, and never skipped for want of one.
      const child = execa(
        'debootstrap',
        ['--variant=minbase', `--keyring=${keyringOf()}`, '--force-check-gpg', release, dir, mirrors.archive],
        { all: true },
      );
      child.all?.on('data', (chunk: Buffer) => {
        // One line per phase, not one per package.
        for (const line of chunk.toString().split('\n')) {
          if (line.trim() && !/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) /.test(line))
            log(`  ${line}`);
        }
      });
      await child;
    } catch (error) {
      const missing = (error as { code?: string }).code === 'ENOENT';
      throw new KmatrixError(missing ? '`debootstrap` is not installed' : `debootstrap of ${release} failed`, {
        stage: 'toolchain',
        cause: error,
        remedy: missing
          ? 'install it: apt-get install -y debootstrap'
          : `check that ${mirrors.archive}/dists/${release}/ is reachable`,
      });
    }
    // minbase only knows the release itself; newest kernels and fixes live in -updates and -security.
    await writeFile(
      join(dir, 'etc/apt/sources.list'),
      [
        `deb ${mirrors.archive} ${release} main`,
        `deb ${mirrors.archive} ${release}-updates main`,
        `deb ${mirrors.security} ${release}-security main`,
        '',
      ].join('\n'),
    );
    await rm(join(dir, 'var/cache/apt/archives'), { recursive: true, force: true });
    log(`importing ${tag}`);
    const tar = execa('tar', ['--numeric-owner', '-C', dir, '-c', '.'], { buffer: false });
    const [repo, version] = tag.split(':');
    const stream = await docker.importImage(tar.stdout!, { repo, tag: version });
    await followProgress(docker, stream);
    await tar;
    return tag;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
