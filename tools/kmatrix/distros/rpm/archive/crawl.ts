/**
 * `kmatrix crawl rpm`: reads each repository's repomd.xml and primary index (no dnf, no package
 * downloads) and lists every kernel-devel with its SHA256 and size, and the kernel package that
 * holds its vmlinuz, for one distro release and arch.
 */
import { fetchBytes } from '../../../core/fetch.ts';
import { KmatrixError } from '../../../core/errors.ts';
import type { ImagePackage, KernelEntry, ListedImage, ListedPackage } from '../../../model/kernel-list.ts';
import type { Arch } from '../../../model/names.ts';
import { compareVersions } from '../../../model/version.ts';
import { kernelPackages, type PrimaryPackage } from './primary.ts';
import { readPrimary, readRepomd } from './repomd.ts';
import { rpmListKey } from '../names.ts';
import { keyringOfDistro, mirrorOf, type RepositoryRef, type RpmDistro } from './repositories.ts';

type Log = (line: string) => void;

/** The repository a mirror.list names today: its first URL, with $basearch filled in. */
export async function followMirrorList(url: string, arch: Arch, log: Log): Promise<string> {
  const text = (
    await fetchBytes(url, { stage: 'crawl', onRetry: (n, why) => log(`  retry ${n} of ${url}: ${why}`) })
  ).toString('utf8');
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    let base: URL;
    try {
      base = new URL(line.replaceAll('$basearch', arch), url);
    } catch {
      continue; // not a URL: the next line may be
    }
    if (base.protocol === 'http:' || base.protocol === 'https:') return base.href.replace(/\/+$/, '');
  }
  throw new KmatrixError(`${url} names no repository`, {
    stage: 'crawl',
    remedy: 'the mirror serves a damaged mirror.list; crawl again later or set the distro mirror',
  });
}

const evr = (p: PrimaryPackage) => `${p.epoch && p.epoch !== '0' ? `${p.epoch}:` : ''}${p.ver}-${p.rel}`;

/**
 * A kernel-devel's name read as its kernel: kernel6.12-devel → base kernel6.12 (Amazon Linux 2023's
 * 6.12 stream); kernel-64k-devel → flavour 64k; kernel-uek-devel → Oracle's UEK.
 */
export function develName(name: string): { base: string; flavour: string } | undefined {
  const m = name.match(/^(kernel(?:\d+\.\d+)?(?:-(64k|rt|uek))?)-devel$/);
  return m ? { base: m[1]!, flavour: m[2] ?? 'default' } : undefined;
}

/**
 * uname -r of a kernel-devel package: <version>-<release>.<arch>; EL9 and later mark the 64k and
 * rt variants with a +64k / +rt suffix (EL8's rt and Oracle's UEK carry theirs in the release).
 */
export function unameOf(p: Pick<PrimaryPackage, 'ver' | 'rel' | 'arch'>, flavour: string): string {
  const suffixed = flavour === '64k' || (flavour === 'rt' && !/\.el[78]/.test(p.rel));
  return `${p.ver}-${p.rel}.${p.arch}${suffixed ? `+${flavour}` : ''}`;
}

function pinned<T extends ListedImage>(p: PrimaryPackage, extra: Omit<T, keyof ListedImage>): T {
  return {
    ...extra,
    name: p.name,
    version: evr(p),
    url: p.url,
    ...(p.sha256 ? { sha256: p.sha256 } : {}),
    ...(p.size ? { size: p.size } : {}),
  } as T;
}

/** Kernel entries from the packages of all of a release's repositories (newest build of each uname -r wins). */
export function kernelsOf(packages: PrimaryPackage[], arch: Arch, distro: string, key: string): KernelEntry[] {
  const byUname = new Map<string, KernelEntry>();
  for (const p of packages) {
    const devel = develName(p.name);
    if (!devel || p.arch !== arch) continue;
    const kernelrelease = unameOf(p, devel.flavour);
    const previous = byUname.get(kernelrelease);
    if (previous && compareVersions(previous.kmatrix!.packageVersion, evr(p)) >= 0) continue;
    const sameBuild = (name: string) => packages.find((q) => q.name === name && q.arch === arch && evr(q) === evr(p));
    const imageOf = sameBuild(`${devel.base}-core`) ?? sameBuild(devel.base);
    const pkg = pinned<ListedPackage>(p, { role: 'devel' });
    byUname.set(kernelrelease, {
      kernelversion: '1',
      kernelrelease,
      target: key,
      headers: [p.url],
      kmatrix: {
        distro,
        arch,
        abi: `${p.ver}-${p.rel}`,
        flavour: devel.flavour,
        packageVersion: evr(p),
        packages: [pkg],
        ...(imageOf ? { image: pinned<ImagePackage>(imageOf, {}) } : {}),
      },
    });
  }
  return [...byUname.values()].sort((a, b) => compareVersions(a.kmatrix!.abi, b.kmatrix!.abi));
}

async function repositoryPackages(d: RpmDistro, ref: RepositoryRef, arch: Arch, log: Log): Promise<PrimaryPackage[]> {
  const keyring = keyringOfDistro(d);
  // Without a keyring, TLS is the only trust there is; a plain-HTTP mirror.list could name any repository.
  if ('mirrorList' in ref && !keyring && !ref.mirrorList.startsWith('https:')) {
    throw new KmatrixError(
      `${ref.mirrorList} would be trusted on nothing: it is plain HTTP and no keyring checks the repository it names; nothing was written`,
      {
        stage: 'crawl',
        remedy: `set KMATRIX_${d.env}_KEYRING to a keyring with the distro's repository key (gpg --dearmor its RPM-GPG-KEY), or use an https mirror`,
      },
    );
  }
  const base = 'base' in ref ? ref.base : await followMirrorList(ref.mirrorList, arch, log);
  const repomd = await readRepomd(base, keyring, d.env, log);
  const packages = kernelPackages(await readPrimary(repomd, log), base);
  log(`  ${d.id} ${ref.label} ${arch}: ${packages.length} kernel packages`);
  return packages;
}

export async function crawlRpm(
  d: RpmDistro,
  release: string,
  arch: Arch,
  distro: string,
  log: Log,
): Promise<KernelEntry[]> {
  const refs = d.repositories(mirrorOf(d), release, arch);
  const packages: PrimaryPackage[] = [];
  for (const ref of refs) packages.push(...(await repositoryPackages(d, ref, arch, log)));
  const kernels = kernelsOf(packages, arch, distro, rpmListKey(d.id, release));
  const unpinned = kernels.filter((k) => !k.kmatrix!.packages[0]!.sha256).length;
  log(
    `  ${d.id} ${release} ${arch}: ${kernels.length} kernels${unpinned ? ` (${unpinned} without a SHA256 in the index: pinned on first download)` : ''}`,
  );
  return kernels;
}
