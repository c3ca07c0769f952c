/**
 * A kernel-crawler Debian entry → the kernel it names, read from its header URLs alone.
 *
 * Real-data traps handled here: `kernelrelease` is the package version plus flavour
 * ("6.1.170-3-rt-arm64" for linux-headers-6.1.0-47-rt-arm64), so the real `uname -r` comes from
 * the flavour package; one entry lists the headers of *every* flavour of its ABI; URLs may carry
 * `../` segments or the DEBIAN-*-MIRROR placeholders of shared samples; a .deb moves from the
 * security archive to the main one at a point release. Every Debian pool path is mirror-independent,
 * so each package gets this machine's mirrors as alternatives, listed before the crawler's own.
 */
import type { Mirrors } from './mirrors.ts';
import type { KernelEntry, ListedImage, ListedKernel, ListedPackage } from '../../../model/kernel-list.ts';
import type { Arch } from '../../../model/names.ts';

import { archOfDebian } from '../arch.ts';

/** Debian release number → codename (a policy distro's `release`). */
const CODENAMES: Record<string, string> = {
  '8': 'jessie',
  '9': 'stretch',
  '10': 'buster',
  '11': 'bullseye',
  '12': 'bookworm',
  '13': 'trixie',
  '14': 'forky',
};
/** The upstream series each stable release ships (backports carry ~bpoNN / +debNN markers instead). */
const SERIES_RELEASE: Record<string, string> = {
  '3.16': '8',
  '4.9': '9',
  '4.19': '10',
  '5.10': '11',
  '6.1': '12',
  '6.12': '13',
};

export function debianRelease(abi: string, version: string): string | undefined {
  // 6.12.57+deb13, 5.18.0-0.deb11.4 (backport ABIs), 5.10.136-1~deb10u3, 5.18.16-1~bpo11+1
  const marker = abi.match(/[+.]deb(\d+)/) ?? version.match(/[~+](?:deb|bpo)(\d+)/);
  if (marker) return marker[1];
  const series = abi.match(/^(\d+\.\d+)/)?.[1];
  return series ? SERIES_RELEASE[series] : undefined;
}

const PLACEHOLDERS = new Set(['debian-mirror', 'debian-security-mirror', 'debian-archive-mirror']);

/** Where this file can be fetched: this machine's mirrors first, then the URL as listed. */
export function debianCandidates(raw: string, mirrors: Mirrors): string[] {
  const url = new URL(raw); // resolves ../ segments
  const out: string[] = [];
  const pool = url.pathname.match(/\/pool\/(updates\/)?((?:main|contrib|non-free(?:-firmware)?)\/.+)$/);
  if (pool) {
    const main = `${mirrors.archive}/pool/${pool[2]}`;
    const security = `${mirrors.security}/pool/updates/${pool[2]}`;
    out.push(...(pool[1] ? [security, main] : [main, security]));
  }
  if (!PLACEHOLDERS.has(url.hostname.toLowerCase())) out.push(url.href);
  return [...new Set(out)];
}

interface Parsed {
  kind: 'flavour' | 'common' | 'kbuild';
  name: string;
  version: string;
  debArch: string;
  abi?: string;
  flavour?: string;
  rt?: boolean;
  candidates: string[];
}

const FLAVOUR =
  /^linux-headers-(\d+\.\d+(?:\.\d+)?(?:\+deb\d+)?(?:-\d+(?:\.(?:deb\d+|bpo)\.\d+)?)?)-([a-z0-9]+(?:-[a-z0-9]+)*)_([^_]+)_([a-z0-9]+)\.deb$/;
const COMMON = /^linux-headers-(.+)-common(-rt)?_([^_]+)_all\.deb$/;
const KBUILD = /^linux-kbuild-([^_]+)_([^_]+)_([a-z0-9]+)\.deb$/;

function parseFile(file: string, candidates: string[]): Parsed | undefined {
  let m = file.match(COMMON);
  if (m)
    return {
      kind: 'common',
      name: `linux-headers-${m[1]}-common${m[2] ?? ''}`,
      abi: m[1],
      rt: Boolean(m[2]),
      version: m[3]!,
      debArch: 'all',
      candidates,
    };
  m = file.match(KBUILD);
  if (m) return { kind: 'kbuild', name: `linux-kbuild-${m[1]}`, version: m[2]!, debArch: m[3]!, candidates };
  m = file.match(FLAVOUR);
  if (m)
    return {
      kind: 'flavour',
      name: `linux-headers-${m[1]}-${m[2]}`,
      abi: m[1],
      flavour: m[2],
      version: m[3]!,
      debArch: m[4]!,
      candidates,
    };
  return undefined;
}

function toPackage(p: Parsed, role: ListedPackage['role'], hostArch?: Arch): ListedPackage {
  const [url, ...alternatives] = p.candidates;
  const pkg: ListedPackage = { role, name: p.name, version: p.version, url: url! };
  if (alternatives.length > 0) pkg.alternatives = alternatives;
  if (hostArch) pkg.hostArch = hostArch;
  return pkg;
}

/**
 * The crawler lists no kernel image; Debian builds linux-image-<release>-unsigned from the same
 * source version into the same pool folder, so it sits beside the flavour's headers (a guess that
 * gen verifies: a 404 there is reported as an infrastructure gap, the build is unaffected).
 */
function imageBeside(f: Parsed, kernelrelease: string): ListedImage {
  const name = `linux-image-${kernelrelease}-unsigned`;
  const file = `${name}_${f.version.replace(/^\d+:/, '')}_${f.debArch}.deb`;
  const [url, ...alternatives] = f.candidates.map((u) => u.slice(0, u.lastIndexOf('/') + 1) + file);
  return { name, version: f.version, url: url!, ...(alternatives.length > 0 ? { alternatives } : {}) };
}

/** The kernel an entry names, filed under the policy distro `distroOf` gives for its Debian codename. */
export function debianKernel(
  entry: KernelEntry,
  mirrors: Mirrors,
  distroOf: (codename: string) => string,
): ListedKernel | { why: string; kind?: string } {
  // The same file on several mirrors is one package with alternatives.
  const byFile = new Map<string, Parsed>();
  for (const raw of entry.headers ?? []) {
    const file = decodeURIComponent(new URL(raw).pathname.split('/').pop()!);
    const candidates = debianCandidates(raw, mirrors);
    const known = byFile.get(file);
    if (known) known.candidates = [...new Set([...known.candidates, ...candidates])];
    else {
      const parsed = parseFile(file, candidates);
      if (parsed) byFile.set(file, parsed);
    }
  }
  const parsed = [...byFile.values()];
  const flavours = parsed.filter((p) => p.kind === 'flavour');
  const f = flavours.find(
    (p) => `${p.version}-${p.flavour}` === entry.kernelrelease || `${p.abi}-${p.flavour}` === entry.kernelrelease,
  );
  if (!f) {
    return {
      why: `none of its header packages is the flavour its kernelrelease names (it lists ${flavours.map((p) => p.name).join(', ') || 'no linux-headers-<abi>-<flavour> package'})`,
    };
  }
  const arch = archOfDebian[f.debArch];
  if (!arch) return { why: `architecture ${f.debArch} is not one kmatrix builds for (amd64, arm64)` };
  const release = debianRelease(f.abi!, f.version);
  const codename = release && CODENAMES[release];
  if (!codename)
    return {
      why: `cannot tell which Debian release ships ABI ${f.abi} (${f.version}): not a stable release series`,
      kind: `cannot tell which Debian release ships it: ${f.abi!.replace(/^(\d+\.\d+).*/, '$1')} is not a stable release series`,
    };
  const rt = f.flavour!.startsWith('rt-');
  const common = parsed.find((p) => p.kind === 'common' && p.abi === f.abi && p.rt === rt);
  if (!common) return { why: `no linux-headers-${f.abi}-common${rt ? '-rt' : ''} package among its headers` };
  const kbuilds = parsed.filter((p) => p.kind === 'kbuild');
  const native = kbuilds.find((p) => p.debArch === f.debArch);
  let host = kbuilds.find((p) => p.debArch === 'amd64');
  if (!host && native) {
    // The crawler lists only the kbuild of the kernel's own arch; x86_64 runners cross-compile
    // with the amd64 build of the same version, which sits next to it in the pool.
    host = {
      ...native,
      debArch: 'amd64',
      candidates: native.candidates.map((u) => u.replace(/_arm64\.deb$/, '_amd64.deb')),
    };
  }
  if (!host) return { why: 'no linux-kbuild package among its headers' };
  const packages = [toPackage(f, 'flavour'), toPackage(common, 'common'), toPackage(host, 'kbuild', 'x86_64')];
  if (arch === 'aarch64' && native) packages.push(toPackage(native, 'kbuild', 'aarch64'));
  const kernelrelease = `${f.abi}-${f.flavour}`;
  const kernel: ListedKernel = {
    kernelrelease,
    kmatrix: {
      distro: distroOf(codename),
      arch,
      abi: f.abi!,
      flavour: f.flavour!,
      packageVersion: f.version,
      packages,
      image: imageBeside(f, kernelrelease),
    },
  };
  if (entry.kernelrelease !== kernelrelease) kernel.listedAs = entry.kernelrelease;
  return kernel;
}
