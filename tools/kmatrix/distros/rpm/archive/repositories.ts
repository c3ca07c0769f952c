/**
 * Which RPM repositories carry a distro release's kernels, and where this machine reaches them.
 * Each distro's mirror is overridable (KMATRIX_<DISTRO>_MIRROR), like KMATRIX_DEBIAN_MIRROR.
 *
 * - Fedora: the release tree plus its updates (kernel-devel and kernel-core in both).
 * - AlmaLinux, Rocky, CentOS Stream: kernel-core in BaseOS, kernel-devel in AppStream.
 * - Oracle Linux: the same packages in its ol<N>/baseos and appstream trees.
 * - Amazon Linux 2 and 2023: no fixed tree; a `mirror.list` per repository and arch names the
 *   current one (what dnf/yum read; see kernel-crawler's amazonlinux.py). Amazon Linux 2's 5.10 and
 *   5.15 kernels live in their own extras repositories.
 */
import { KmatrixError } from '../../../core/errors.ts';
import type { Arch } from '../../../model/names.ts';
import type { RpmDistroId } from '../names.ts';

/** A repository: its base URL (holding repodata/), or a mirror.list that names it. */
export type RepositoryRef = { label: string } & ({ base: string } | { mirrorList: string });

export interface RpmDistro {
  /** The os-release ID, the policy's `distro` value. */
  id: RpmDistroId;
  /** KMATRIX_<ENV>_MIRROR, KMATRIX_<ENV>_KEYRING */
  env: string;
  defaultMirror: string;
  repositories(mirror: string, release: string, arch: Arch): RepositoryRef[];
}

const elTrees =
  (paths: (release: string, repo: string, arch: Arch) => string) =>
  (mirror: string, release: string, arch: Arch): RepositoryRef[] =>
    ['BaseOS', 'AppStream'].map((repo) => ({
      label: `${release} ${repo}`,
      base: `${mirror}/${paths(release, repo, arch)}`,
    }));

export const RPM_DISTROS: readonly RpmDistro[] = [
  {
    id: 'fedora',
    env: 'FEDORA',
    defaultMirror: 'https://dl.fedoraproject.org/pub/fedora/linux',
    repositories: (mirror, release, arch) => [
      { label: `${release}`, base: `${mirror}/releases/${release}/Everything/${arch}/os` },
      { label: `${release} updates`, base: `${mirror}/updates/${release}/Everything/${arch}` },
    ],
  },
  {
    id: 'almalinux',
    env: 'ALMALINUX',
    defaultMirror: 'https://repo.almalinux.org/almalinux',
    repositories: elTrees((release, repo, arch) => `${release}/${repo}/${arch}/os`),
  },
  {
    id: 'rocky',
    env: 'ROCKY',
    defaultMirror: 'https://dl.rockylinux.org/pub/rocky',
    repositories: elTrees((release, repo, arch) => `${release}/${repo}/${arch}/os`),
  },
  {
    id: 'centos',
    env: 'CENTOS',
    defaultMirror: 'https://mirror.stream.centos.org',
    repositories: elTrees((release, repo, arch) => `${release}-stream/${repo}/${arch}/os`),
  },
  {
    id: 'ol',
    env: 'OL',
    defaultMirror: 'https://yum.oracle.com/repo/OracleLinux',
    // yum.oracle.com: OL<N>/baseos/latest/<arch> and OL<N>/appstream/<arch>
    repositories: elTrees((release, repo, arch) =>
      repo === 'BaseOS' ? `OL${release}/baseos/latest/${arch}` : `OL${release}/appstream/${arch}`,
    ),
  },
  {
    id: 'amazonlinux',
    env: 'AMAZONLINUX',
    defaultMirror: 'https://cdn.amazonlinux.com',
    repositories: (mirror, release, arch) => {
      if (release === '2023')
        return [{ label: '2023 core', mirrorList: `${mirror}/al2023/core/mirrors/latest/${arch}/mirror.list` }];
      if (release === '2')
        return ['core', 'extras/kernel-5.10', 'extras/kernel-5.15'].map((repo) => ({
          label: `2 ${repo}`,
          mirrorList: `${mirror}/2/${repo}/latest/${arch}/mirror.list`,
        }));
      throw new KmatrixError(`kmatrix does not know Amazon Linux ${release}`, {
        stage: 'crawl',
        remedy: 'use release "2" or "2023"',
      });
    },
  },
];

export function rpmDistro(id: string): RpmDistro {
  const d = RPM_DISTROS.find((x) => x.id === id);
  if (!d)
    throw new KmatrixError(`the rpm family does not serve distro "${id}"`, {
      stage: 'crawl',
      remedy: `use one of: ${RPM_DISTROS.map((x) => x.id).join(', ')}`,
    });
  return d;
}

/** The distro and release a kernel-crawler key names (amazonlinux2023 → amazonlinux 2023). */
export function distroOfListKey(key: string): { distro: RpmDistro; release?: string } | undefined {
  const al = key.match(/^amazonlinux(2|2022|2023)$/);
  if (al) return { distro: rpmDistro('amazonlinux'), release: al[1] };
  const d = RPM_DISTROS.find((x) => x.id === key);
  return d && { distro: d };
}

export const mirrorOf = (d: RpmDistro, env: NodeJS.ProcessEnv = process.env) =>
  (env[`KMATRIX_${d.env}_MIRROR`] ?? d.defaultMirror).replace(/\/+$/, '');

/** The keyring that signs the distro's repomd.xml, when this machine has one. */
export const keyringOfDistro = (d: RpmDistro, env: NodeJS.ProcessEnv = process.env) =>
  env[`KMATRIX_${d.env}_KEYRING`] || undefined;
