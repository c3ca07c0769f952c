/**
 * An RPM repository's metadata, read the way dnf reads it: repodata/repomd.xml (optionally signed,
 * repomd.xml.asc) names the primary index with its checksum and size; the primary index
 * (primary.xml.gz, .zst or .xz) lists every package with its own checksum and size. The chain is
 * checked link by link, so each package a kernel list records is pinned by what the repository
 * itself says.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { execa } from 'execa';
import { XMLParser } from 'fast-xml-parser';
import { fetchBytes, httpStatusOf } from '../../../core/fetch.ts';
import { gpgvVerified } from '../../../core/gpgv.ts';
import { KmatrixError } from '../../../core/errors.ts';

export interface Repomd {
  /** Where the primary index is, and what it must be. */
  primary: { url: string; checksumType: 'sha256' | 'sha512'; checksum: string; size?: number };
}

type Log = (line: string) => void;

const untrusted = (url: string, why: string, remedy: string) =>
  new KmatrixError(`${url} ${why}; nothing was written`, { stage: 'crawl', remedy });

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => name === 'data' });

const fetchOf = (url: string, log: Log) =>
  fetchBytes(url, { stage: 'crawl', onRetry: (n, why) => log(`  retry ${n} of ${url}: ${why}`) });

/** The repository's repomd.xml, its signature checked when a keyring is given. */
export async function readRepomd(base: string, keyring: string | undefined, env: string, log: Log): Promise<Repomd> {
  const url = `${base}/repodata/repomd.xml`;
  const data = await fetchOf(url, log);
  if (keyring) {
    const signature = await fetchOf(`${url}.asc`, log).catch((error: unknown) => {
      if (httpStatusOf(error) !== 404) throw error;
      throw untrusted(
        url,
        `has no signature (${url}.asc is missing) while KMATRIX_${env}_KEYRING asks for one`,
        `use a mirror that serves repomd.xml.asc, or unset KMATRIX_${env}_KEYRING and use an https mirror (trust through TLS only)`,
      );
    });
    await gpgvVerified(
      keyring,
      url,
      { data, signature },
      `the mirror may be tampered with or stale; if the distro rotated its keys, update KMATRIX_${env}_KEYRING`,
    );
    log(`  ${url}: signed by a key in ${keyring}`);
  } else if (!url.startsWith('https:')) {
    throw untrusted(
      url,
      'would be trusted on nothing: it is plain HTTP and no keyring checks its signature',
      `set KMATRIX_${env}_KEYRING to a keyring with the distro's repository key (gpg --dearmor its RPM-GPG-KEY), or use an https mirror`,
    );
  } else log(`  ${url}: trusted through TLS only (set KMATRIX_${env}_KEYRING to check its signature)`);
  return parseRepomd(url, data.toString('utf8'));
}

export function parseRepomd(url: string, xml: string): Repomd {
  let doc: { repomd?: { data?: Record<string, unknown>[] } };
  try {
    doc = parser.parse(xml, true);
  } catch (error) {
    throw untrusted(url, `is not XML (${(error as Error).message.split('\n')[0]})`, 'the mirror serves a damaged file');
  }
  const primary = doc.repomd?.data?.find((d) => d['@type'] === 'primary') as
    | { checksum?: { '#text'?: string; '@type'?: string }; location?: { '@href'?: string }; size?: number }
    | undefined;
  const href = primary?.location?.['@href'];
  const type = primary?.checksum?.['@type'];
  const checksum = String(primary?.checksum?.['#text'] ?? '');
  if (!primary || !href) throw untrusted(url, 'names no primary index', 'the mirror serves a damaged repomd.xml');
  if (type !== 'sha256' && type !== 'sha512')
    throw untrusted(
      url,
      `pins its primary index with ${type ?? 'no checksum'}`,
      'kmatrix trusts only sha256 or sha512 checksums',
    );
  const len = type === 'sha256' ? 64 : 128;
  if (!new RegExp(`^[0-9a-f]{${len}}$`).test(checksum))
    throw untrusted(
      url,
      `has a malformed ${type} checksum for its primary index`,
      'the mirror serves a damaged repomd.xml',
    );
  const base = url.slice(0, url.lastIndexOf('/repodata/') + 1);
  return {
    primary: {
      url: new URL(href, base).href,
      checksumType: type,
      checksum,
      ...(typeof primary.size === 'number' ? { size: primary.size } : {}),
    },
  };
}

async function decompress(url: string, data: Buffer): Promise<string> {
  try {
    if (url.endsWith('.gz')) return gunzipSync(data).toString('utf8');
    if (url.endsWith('.zst')) return zstdDecompressSync(data).toString('utf8');
    if (url.endsWith('.xz')) {
      const { stdout } = await execa('xz', ['-dc'], { input: data, maxBuffer: 2 ** 31 - 1, encoding: 'utf8' });
      return stdout;
    }
    if (url.endsWith('.xml')) return data.toString('utf8');
  } catch (error) {
    throw new KmatrixError(`cannot decompress ${url}`, {
      stage: 'crawl',
      cause: error,
      remedy: 'the download may be corrupt, or `xz` missing (apt-get install -y xz-utils); run the crawl again',
    });
  }
  throw untrusted(url, 'has a compression kmatrix does not read', 'the repository should offer .gz, .zst or .xz');
}

/** The primary index's XML, after its checksum and size matched what repomd.xml says. */
export async function readPrimary(repomd: Repomd, log: Log): Promise<string> {
  const { url, checksumType, checksum, size } = repomd.primary;
  log(`fetching ${url}`);
  const data = await fetchOf(url, log);
  const actual = createHash(checksumType).update(data).digest('hex');
  if (actual !== checksum || (size !== undefined && data.length !== size)) {
    throw untrusted(
      url,
      `is ${data.length} bytes with ${checksumType} ${actual}, but repomd.xml says ${size ?? '?'} bytes with ${checksum}`,
      'the mirror may be mid-sync or tampered with: crawl again later, or use another mirror',
    );
  }
  return decompress(url, data);
}
