/**
 * The kernel packages of a primary index (the `common` metadata namespace: one <package> per
 * rpm with name, arch, version, checksum, size and location). A distro's index holds tens of
 * thousands of packages; only the kernel ones are parsed, each on its own, so the rest costs a
 * string search and one odd entry costs only itself.
 */
import { XMLParser } from 'fast-xml-parser';

export interface PrimaryPackage {
  name: string;
  arch: string;
  epoch: string;
  ver: string;
  rel: string;
  /** Only when the index pins it with SHA256 (others are pinned on first download by gen). */
  sha256?: string;
  size?: number;
  url: string;
}

/** kernel, kernel-core and kernel-devel and their variants: kernel6.12-devel, kernel-64k-core, kernel-rt-devel. */
export const KERNEL_PACKAGE = /^kernel(?:\d+\.\d+)?(?:-(?:64k|rt|uek))?(?:-core|-devel)?$/;

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false });

interface RawPackage {
  name?: string;
  arch?: string;
  version?: { '@epoch'?: string; '@ver'?: string; '@rel'?: string };
  checksum?: { '#text'?: string; '@type'?: string };
  size?: { '@package'?: string };
  location?: { '@href'?: string; '@xml:base'?: string };
}

/** RPM's own character set for version and release; anything else is not an RPM's. */
const EVR_PART = /^[A-Za-z0-9._+~^]+$/;

function read(raw: RawPackage, base: string): PrimaryPackage | undefined {
  const v = raw.version;
  const href = raw.location?.['@href'];
  if (!raw.name || !raw.arch || !v?.['@ver'] || !v['@rel'] || !href) return undefined;
  if (!EVR_PART.test(v['@ver']) || !EVR_PART.test(v['@rel']) || !/^[a-z0-9_]+$/.test(raw.arch)) return undefined;
  if (v['@epoch'] !== undefined && !/^\d+$/.test(v['@epoch'])) return undefined;
  const checksum = raw.checksum?.['#text'];
  const size = Number(raw.size?.['@package']);
  const url = new URL(href, raw.location?.['@xml:base'] ?? `${base}/`).href;
  if (!/^https?:/.test(url)) return undefined;
  return {
    name: raw.name,
    arch: raw.arch,
    epoch: v['@epoch'] ?? '0',
    ver: v['@ver'],
    rel: v['@rel'],
    ...(raw.checksum?.['@type'] === 'sha256' && checksum && /^[0-9a-f]{64}$/.test(checksum)
      ? { sha256: checksum }
      : {}),
    ...(Number.isSafeInteger(size) && size > 0 ? { size } : {}),
    url,
  };
}

/** Every kernel package of the index at `base` (the repository's base URL). */
export function kernelPackages(xml: string, base: string): PrimaryPackage[] {
  const out: PrimaryPackage[] = [];
  for (let at = xml.indexOf('<package'); at >= 0; ) {
    const end = xml.indexOf('</package>', at);
    if (end < 0) break;
    const chunk = xml.slice(at, end + '</package>'.length);
    at = xml.indexOf('<package', end);
    const name = chunk.match(/<name>([^<]*)<\/name>/)?.[1];
    if (!name || !KERNEL_PACKAGE.test(name)) continue;
    try {
      const p = read((parser.parse(chunk) as { package?: RawPackage }).package ?? {}, base);
      if (p) out.push(p);
    } catch {
      // A malformed entry is skipped; the index's other kernels stay usable.
    }
  }
  return out;
}
