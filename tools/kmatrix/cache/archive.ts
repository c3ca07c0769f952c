/**
 * Which target an Nx cache entry belongs to, read from the entry itself: Nx uploads a gzipped
 * tar of the task's outputs, and ours live under dist/targets/<driver>/<distro>/<release>/<arch>/.
 * Best effort — an entry we cannot read is still stored, just without a target name.
 */
import { createGunzip } from 'node:zlib';

/**
 * How much of an entry is looked at to find its target: the output folder's path comes first in
 * the tar, so its first 256 KiB (compressed) are plenty, and at most 16 MiB are inflated from
 * them. Bounds, so a gzip bomb costs this much and no more.
 */
export const ARCHIVE_HEAD_BYTES = 256 * 2 ** 10;
const MAX_INFLATED = 16 * 2 ** 20;

/** The members of an (uncompressed) tar: path and body, PAX long names included. */
export function tarMembers(tar: Buffer): { path: string; body: Buffer }[] {
  const out: { path: string; body: Buffer }[] = [];
  let pax: string | undefined;
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from: number, len: number) => header.toString('utf8', from, from + len).replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const body = tar.subarray(at + 512, at + 512 + size);
    if (type === 'x') {
      pax = body.toString('utf8').match(/\d+ path=([^\n]*)\n/)?.[1];
    } else {
      const prefix = field(345, 155);
      out.push({ path: pax ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100)), body });
      pax = undefined;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The first MAX_INFLATED bytes inflated from gzipped bytes (streamed: decompression off the event loop), or undefined if they are not gzip. */
async function inflatedHead(gz: Buffer): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  const gunzip = createGunzip();
  gunzip.end(gz);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= MAX_INFLATED) break;
    }
    return Buffer.concat(chunks).subarray(0, MAX_INFLATED);
  } catch {
    return total > 0 ? Buffer.concat(chunks) : undefined; // not gzip, or cut short: what was read, if anything
  } finally {
    gunzip.destroy();
  }
}

/** The target an entry belongs to, from its first ARCHIVE_HEAD_BYTES (best effort: an entry we cannot read is stored without one). */
export async function targetOfArchive(head: Buffer): Promise<string | undefined> {
  const tar = await inflatedHead(head);
  if (!tar) return undefined;
  for (const { path } of tarMembers(tar)) {
    const m = path.match(/(?:^|\/)dist\/targets\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\//);
    if (m) return m.slice(1, 5).join('--');
  }
  return undefined;
}
