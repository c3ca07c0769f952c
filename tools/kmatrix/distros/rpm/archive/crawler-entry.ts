/**
 * A kernel-crawler RPM entry (fedora, centos, almalinux, rocky, ol, amazonlinux2, amazonlinux2023)
 * → the kernel it names, from its kernel-devel URL alone: the file name is
 * <name>-<version>-<release>.<arch>.rpm, and uname -r is <version>-<release>.<arch>. Amazon Linux
 * URLs carry `../` segments (resolved here). The distro release comes from the release tag
 * (fc40 → 40, el9_4 → 9, amzn2023 → 2023).
 */
import type { KernelEntry, ListedImage, ListedKernel } from '../../../model/kernel-list.ts';
import type { Arch } from '../../../model/names.ts';
import { develName, unameOf } from './crawl.ts';
import { distroOfListKey } from './repositories.ts';

const FILE = /^(kernel[0-9a-z.-]*?-devel)-([^-]+)-([^-]+)\.(x86_64|aarch64)\.rpm$/;

/** The distro release a package release tag names, if it names one. */
export function releaseOfTag(rel: string): string | undefined {
  return rel.match(/\.(?:fc|el|amzn)(\d+)(?!\d)/)?.[1];
}

/**
 * Fedora puts kernel-core (which holds vmlinuz) beside kernel-devel; EL8+ in BaseOS when devel is in AppStream; a
 * guess that gen checks (a 404 is reported as a boot-test gap, the build is unaffected).
 */
function imageBeside(url: URL, base: string, ver: string, rel: string, arch: string): ListedImage | undefined {
  if (!/\.(fc\d+|el(?:[89]|1\d))/.test(rel)) return undefined;
  const name = `${base}-core`;
  const beside = new URL(`${name}-${ver}-${rel}.${arch}.rpm`, url);
  // EL keeps kernel-devel in AppStream and kernel-core in BaseOS.
  beside.pathname = beside.pathname.replace('/AppStream/', '/BaseOS/');
  return { name, version: `${ver}-${rel}`, url: beside.href };
}

export function rpmKernel(
  entry: KernelEntry,
  key: string,
  distroOf: (release: string, distro: string) => string,
): ListedKernel | { why: string } {
  const found = distroOfListKey(key);
  if (!found) return { why: `kernel-crawler key ${key} is not an RPM distro kmatrix reads` };
  for (const raw of entry.headers ?? []) {
    const url = new URL(raw);
    const m = decodeURIComponent(url.pathname.split('/').pop() ?? '').match(FILE);
    const devel = m && develName(m[1]!);
    if (!m || !devel) continue;
    const [, name, ver, rel, arch] = m as unknown as [string, string, string, string, Arch];
    const release = found.release ?? releaseOfTag(rel);
    if (!release) return { why: `cannot tell which ${found.distro.id} release ${rel} belongs to` };
    const kernelrelease = unameOf({ ver, rel, arch }, devel.flavour);
    const image = imageBeside(url, devel.base, ver, rel, arch);
    const kernel: ListedKernel = {
      kernelrelease,
      kmatrix: {
        distro: distroOf(release, found.distro.id),
        arch,
        abi: `${ver}-${rel}`,
        flavour: devel.flavour,
        packageVersion: `${ver}-${rel}`,
        packages: [{ role: 'devel', name, version: `${ver}-${rel}`, url: url.href }],
        ...(image ? { image } : {}),
      },
    };
    if (entry.kernelrelease !== kernelrelease) kernel.listedAs = entry.kernelrelease;
    return kernel;
  }
  return { why: 'none of its header URLs is a kernel-devel .rpm (<name>-devel-<version>-<release>.<arch>.rpm)' };
}
