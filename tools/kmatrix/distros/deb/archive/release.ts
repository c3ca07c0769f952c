/**
 * The chain of trust from Debian's archive key to every index the crawl reads: a suite's
 * `InRelease` is checked by gpgv against the archive keyring, and only the text gpgv says was
 * signed is read (a clearsigned file can carry unsigned text around the signed part). Its SHA256
 * list then pins each Packages file; each .deb is pinned by its Packages stanza, as before.
 * Falls back to `Release` + `Release.gpg` for a mirror without InRelease.
 */
import { fetchBytes, httpStatusOf } from '../../../core/fetch.ts';
import { KmatrixError } from '../../../core/errors.ts';
import { sha256 } from '../../../core/hash.ts';
import { gpgvVerified } from '../../../core/gpgv.ts';
import { parseStanzas } from './deb822.ts';

/** What a signed Release says of one file below dists/<suite>/. */
export interface ReleaseEntry {
  sha256: string;
  size: number;
}

export interface SignedRelease {
  url: string;
  files: Map<string, ReleaseEntry>;
  /**
   * The archive keeps each index under by-hash/SHA256/<digest> as well (`Acquire-By-Hash: yes`),
   * so the exact file this Release names can be fetched even while the mirror syncs a newer one.
   */
  byHash: boolean;
}

/** The archive's own keys (debian-archive-keyring), unless KMATRIX_DEBIAN_KEYRING names others. */
export function keyringOf(env: NodeJS.ProcessEnv = process.env): string {
  return env.KMATRIX_DEBIAN_KEYRING ?? '/usr/share/keyrings/debian-archive-keyring.gpg';
}

/** An index file that is not what the signed Release says. */
export class UntrustedIndexError extends KmatrixError {}

const untrusted = (url: string, why: string, remedy: string) =>
  new UntrustedIndexError(`${url} ${why}; nothing was written`, { stage: 'crawl', remedy });

/** The SHA256 list of a Release file (" <sha256> <size> <path>" lines) and its by-hash promise. */
function parseRelease(url: string, text: string, now: Date): Omit<SignedRelease, 'url'> {
  const [release] = parseStanzas(text);
  const validUntil = release?.['Valid-Until'];
  if (validUntil && Date.parse(validUntil) < now.getTime()) {
    throw untrusted(
      url,
      `expired on ${validUntil} (Valid-Until)`,
      'the mirror serves an outdated copy: use a current mirror',
    );
  }
  const files = new Map<string, ReleaseEntry>();
  for (const line of (release?.SHA256 ?? '').split('\n')) {
    const m = line.trim().match(/^([0-9a-f]{64})\s+(\d+)\s+(\S+)$/);
    if (m) files.set(m[3]!, { sha256: m[1]!, size: Number(m[2]) });
  }
  if (files.size === 0) throw untrusted(url, 'lists no SHA256 checksums', 'the mirror serves a damaged Release file');
  return { files, byHash: release?.['Acquire-By-Hash']?.trim().toLowerCase() === 'yes' };
}

/** A suite's Release, verified: InRelease, or Release with Release.gpg where there is no InRelease. */
export async function signedRelease(
  baseUrl: string,
  suite: string,
  keyring: string,
  log: (line: string) => void,
): Promise<SignedRelease> {
  const base = `${baseUrl}/dists/${suite}`;
  const fetchOf = (url: string) =>
    fetchBytes(url, { stage: 'crawl', onRetry: (n, why) => log(`  retry ${n} of ${url}: ${why}`) });
  let url = `${base}/InRelease`;
  let text: string;
  const remedy =
    'the mirror may be tampered with or stale; if the archive rotated its keys, update the keyring (debian-archive-keyring, or KMATRIX_DEBIAN_KEYRING / KMATRIX_UBUNTU_KEYRING)';
  try {
    const data = await fetchOf(url);
    text = await gpgvVerified(keyring, url, { data }, remedy);
  } catch (error) {
    if (httpStatusOf(error) !== 404) throw error;
    url = `${base}/Release`;
    const [data, signature] = [await fetchOf(url), await fetchOf(`${url}.gpg`)];
    text = await gpgvVerified(keyring, url, { data, signature }, remedy);
  }
  log(`  ${suite}: ${url.split('/').pop()} signed by the archive key`);
  return { url, ...parseRelease(url, text, new Date()) };
}

/** Throws unless `data` is the file the signed Release lists at `path`. */
function checkAgainstRelease(release: SignedRelease, path: string, url: string, data: Buffer): void {
  const expected = release.files.get(path);
  if (!expected) {
    throw untrusted(
      url,
      `is not listed in the signed ${release.url}`,
      'the mirror serves a file its Release does not name',
    );
  }
  const actual = sha256(data);
  if (actual !== expected.sha256 || data.length !== expected.size) {
    throw untrusted(
      url,
      `is ${data.length} bytes with SHA256 ${actual}, but the signed ${release.url} says ${expected.size} bytes with ${expected.sha256}`,
      'the mirror may be mid-sync or tampered with: crawl again later, or use another mirror',
    );
  }
}

/**
 * Fetches the file the signed Release lists at `path` (below dists/<suite>/) and checks it. Where
 * the archive offers by-hash, that copy is asked for first, as apt does: a mirror that has synced
 * a newer Packages but still serves the older InRelease (or the reverse) then still yields the
 * exact bytes the signature covers. A mirror without that copy falls back to the plain path.
 */
export async function fetchListed(
  release: SignedRelease,
  path: string,
  log: (line: string) => void,
): Promise<{ url: string; data: Buffer }> {
  const dists = release.url.slice(0, release.url.lastIndexOf('/'));
  const plain = `${dists}/${path}`;
  const expected = release.files.get(path);
  const fetchOf = (url: string) =>
    fetchBytes(url, { stage: 'crawl', onRetry: (n, why) => log(`  retry ${n} of ${url}: ${why}`) });
  if (release.byHash && expected) {
    const byHash = `${dists}/${path.slice(0, path.lastIndexOf('/') + 1)}by-hash/SHA256/${expected.sha256}`;
    log(`fetching ${plain} (by hash)`);
    try {
      const data = await fetchOf(byHash);
      checkAgainstRelease(release, path, byHash, data);
      return { url: byHash, data };
    } catch (error) {
      // Missing (404, or 403 from a bucket-backed mirror) or not the signed bytes: the plain path
      // is checked against the same signed Release, so trying it costs no trust.
      const status = httpStatusOf(error);
      const client = status !== undefined && status >= 400 && status < 500;
      if (!client && !(error instanceof UntrustedIndexError)) throw error;
      log(`  ${byHash}: ${client ? `HTTP ${status}` : (error as Error).message}; reading ${plain}`);
    }
  } else {
    log(`fetching ${plain}`);
  }
  const data = await fetchOf(plain);
  checkAgainstRelease(release, path, plain, data);
  return { url: plain, data };
}
