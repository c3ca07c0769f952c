/**
 * Which target an Nx cache entry belongs to, read from the entry itself: Nx uploads a gzipped
 * tar of the task's outputs, and ours live under dist/targets/<driver>/<distro>/<release>/<arch>/.
 * Best effort — an entry we cannot read is still stored, just without a target name.
 */
import { gunzipSync } from 'node:zlib';

const MAX_INSPECTED = 256 * 2 ** 20;

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

export function targetOfArchive(body: Buffer): string | undefined {
  if (body.length > MAX_INSPECTED) return undefined;
  try {
    for (const { path } of tarMembers(gunzipSync(body))) {
      const m = path.match(/(?:^|\/)dist\/targets\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\//);
      if (m) return m.slice(1, 5).join('--');
    }
  } catch {
    // not a gzipped tar: fine
  }
  return undefined;
}
