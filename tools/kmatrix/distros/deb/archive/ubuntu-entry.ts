/**
 * A kernel-crawler Ubuntu entry → the kernel it names, from its header URLs alone: the flavour's
 * linux-headers-<abi>-<flavour>_<version>_<arch>.deb and the tree it shares,
 * linux-headers-<abi>_<version>_all.deb (linux-<x>-headers-<abi> for derivatives such as aws,
 * linux-aws-5.4-headers-<abi> for their backports).
 * Entries list the same .deb on several mirrors (archive, security, ports): one package with
 * alternatives. The Ubuntu release comes from the kernel series and its pool folder: linux,
 * linux-aws → the release whose kernel that series is; linux-hwe-5.15, linux-aws-5.15 (a newer
 * series backported) → the LTS before it.
 */
import type { KernelEntry, ListedKernel, ListedPackage } from '../../../model/kernel-list.ts';

import { archOfDebian } from '../arch.ts';

/** The kernel series each release ships (LTS releases marked). */
const SERIES: { series: string; codename: string; version: string; lts?: true }[] = [
  { series: '4.4', codename: 'xenial', version: '16.04', lts: true },
  { series: '4.15', codename: 'bionic', version: '18.04', lts: true },
  { series: '5.4', codename: 'focal', version: '20.04', lts: true },
  { series: '5.8', codename: 'groovy', version: '20.10' },
  { series: '5.11', codename: 'hirsute', version: '21.04' },
  { series: '5.13', codename: 'impish', version: '21.10' },
  { series: '5.15', codename: 'jammy', version: '22.04', lts: true },
  { series: '5.19', codename: 'kinetic', version: '22.10' },
  { series: '6.2', codename: 'lunar', version: '23.04' },
  { series: '6.5', codename: 'mantic', version: '23.10' },
  { series: '6.8', codename: 'noble', version: '24.04', lts: true },
  { series: '6.11', codename: 'oracular', version: '24.10' },
  { series: '6.14', codename: 'plucky', version: '25.04' },
];

const seriesNumber = (s: string) => s.split('.').reduce((n, p) => n * 1000 + Number(p), 0);

/**
 * The Ubuntu codename an ABI belongs to. A backport says so in its package version
 * (5.4.0-150.167~18.04.1: built for 18.04); otherwise the pool folder tells a backported series
 * (linux-hwe-5.15) from the release's own kernel (linux, linux-aws).
 */
export function ubuntuRelease(abi: string, poolFolder: string, packageVersion = ''): string | undefined {
  const built = packageVersion.match(/~(\d\d\.\d\d)(?:\.\d+)?$/)?.[1];
  if (built) return SERIES.find((s) => s.version === built)?.codename;
  const series = abi.match(/^(\d+\.\d+)/)?.[1];
  if (!series) return undefined;
  // linux-hwe-5.15, linux-aws-5.15, linux-hwe-6.8: a series backported to the LTS before it.
  if (/-\d+\.\d+$/.test(poolFolder)) {
    return SERIES.filter((s) => s.lts && seriesNumber(s.series) < seriesNumber(series)).at(-1)?.codename;
  }
  return SERIES.find((s) => s.series === series)?.codename;
}

const FLAVOUR = /^linux-headers-(\d+\.\d+\.\d+-\d+)-([a-z0-9]+(?:-[a-z0-9]+)*)_([^_]+)_([a-z0-9]+)\.deb$/;
// linux-headers-5.15.0-91, linux-aws-headers-5.15.0-1019, linux-aws-5.4-headers-5.4.0-1032; usually
// Architecture all, but some derivatives (snapdragon) publish it per arch.
const COMMON = /^(linux-(?:[a-z0-9.]+-)*headers-(\d+\.\d+\.\d+-\d+))_([^_]+)_[a-z0-9]+\.deb$/;

interface Found {
  name: string;
  version: string;
  urls: string[];
  folder: string;
}

function add(map: Map<string, Found>, key: string, f: Omit<Found, 'urls'>, url: string): void {
  const known = map.get(key);
  if (known) known.urls = [...new Set([...known.urls, url])];
  else map.set(key, { ...f, urls: [url] });
}

const toPackage = (role: string, f: Found): ListedPackage => ({
  role,
  name: f.name,
  version: f.version,
  url: f.urls[0]!,
  ...(f.urls.length > 1 ? { alternatives: f.urls.slice(1) } : {}),
});

export function ubuntuKernel(
  entry: KernelEntry,
  distroOf: (codename: string) => string,
): ListedKernel | { why: string } {
  const flavours = new Map<string, Found & { abi: string; flavour: string; debArch: string }>();
  const commons = new Map<string, Found & { abi: string }>();
  for (const raw of entry.headers ?? []) {
    const url = new URL(raw);
    const parts = url.pathname.split('/');
    const file = decodeURIComponent(parts.pop() ?? '');
    const folder = parts.pop() ?? '';
    let m = file.match(FLAVOUR);
    if (m) {
      const [, abi, flavour, version, debArch] = m as unknown as string[];
      const key = `${abi}-${flavour}`;
      add(flavours as Map<string, Found>, key, { name: `linux-headers-${key}`, version: version!, folder }, url.href);
      Object.assign(flavours.get(key)!, { abi, flavour, debArch });
      continue;
    }
    m = file.match(COMMON);
    if (m) {
      add(commons as Map<string, Found>, m[1]!, { name: m[1]!, version: m[3]!, folder }, url.href);
      Object.assign(commons.get(m[1]!)!, { abi: m[2] });
    }
  }
  const f = flavours.get(entry.kernelrelease) ?? [...flavours.values()][0];
  if (!f) return { why: 'none of its header URLs is a linux-headers-<abi>-<flavour> package' };
  const arch = archOfDebian[f.debArch];
  if (!arch) return { why: `architecture ${f.debArch} is not one kmatrix builds for (amd64, arm64)` };
  const common = [...commons.values()].find((c) => c.abi === f.abi && c.version === f.version);
  if (!common) return { why: `no linux-headers-${f.abi} (or linux-<x>-headers-${f.abi}) package among its headers` };
  const codename = ubuntuRelease(f.abi, f.folder, f.version);
  if (!codename) return { why: `cannot tell which Ubuntu release ships ${f.abi} (from ${f.folder})` };
  const kernelrelease = `${f.abi}-${f.flavour}`;
  const kernel: ListedKernel = {
    kernelrelease,
    kmatrix: {
      distro: distroOf(codename),
      arch,
      abi: f.abi,
      flavour: f.flavour,
      packageVersion: f.version,
      packages: [toPackage('flavour', f), toPackage('common', common)],
      image: {
        name: `linux-image-unsigned-${kernelrelease}`,
        version: f.version,
        // Beside the headers in the same pool folder; gen checks it (a 404 is a boot-test gap).
        url: new URL(`linux-image-unsigned-${kernelrelease}_${f.version}_${f.debArch}.deb`, f.urls[0]).href,
      },
    },
  };
  if (entry.kernelrelease !== kernelrelease) kernel.listedAs = entry.kernelrelease;
  return kernel;
}
