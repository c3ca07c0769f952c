/**
 * Archives built byte by byte, so a test can make the hostile ones real tools refuse to make:
 * cpio "newc" (an rpm's payload), ustar, and a .deb around a data tar.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** st_mode of a folder, a file and a symlink, as archives record them. */
export const DIR = 0o040755;
export const FILE = 0o100644;
export const LINK = 0o120777;

/** A destination to unpack into and a folder beside it that must stay empty; removed after the test. */
export async function unpackScratch(
  t: { after: (fn: () => Promise<void>) => void },
  prefix: string,
): Promise<{ root: string; dest: string; outside: string }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dest = join(root, 'dest');
  const outside = join(root, 'outside');
  await mkdir(dest);
  await mkdir(outside);
  return { root, dest, outside };
}

export interface Member {
  name: string;
  /** File type and permission bits, as st_mode (0o100644 a file, 0o040755 a folder, 0o120777 a symlink). */
  mode: number;
  /** A file's content, or a symlink's or hard link's target. */
  data?: string;
  /** tar only: the type flag, when it is not the one `mode` implies ('1' hard link, '3' char device…). */
  tarType?: string;
}

/** A cpio "newc" archive, as rpmbuild writes its payload. */
export function cpio(members: Member[]): Buffer {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  const parts: Buffer[] = [];
  [...members, { name: 'TRAILER!!!', mode: 0 }].forEach((m, i) => {
    const data = Buffer.from(m.data ?? '');
    const name = Buffer.from(`${m.name}\0`);
    const fields = [i + 1, m.mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length, 0];
    parts.push(pad(Buffer.concat([Buffer.from(`070701${fields.map(hex).join('')}`), name])), pad(data));
  });
  return Buffer.concat(parts);
}

/** The tar type flag of an st_mode's file type (a Map: object keys would be decimal strings). */
const TYPE_OF = new Map<number, string>([
  [0o100000, '0'],
  [0o040000, '5'],
  [0o120000, '2'],
  [0o020000, '3'],
  [0o010000, '6'],
]);

/** One ustar header (512 bytes) with its checksum. */
function tarHeader(m: Member, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, at: number, len: number) => h.write(text, at, len, 'utf8');
  const octal = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  const field = (n: number, at: number, len: number) => put(octal(n, len), at, len);
  const type = m.tarType ?? TYPE_OF.get(m.mode & 0o170000) ?? '0';
  put(m.name, 0, 100);
  field(m.mode & 0o7777, 100, 8);
  field(0, 108, 8);
  field(0, 116, 8);
  field(size, 124, 12);
  field(0, 136, 12);
  put(' '.repeat(8), 148, 8);
  put(type, 156, 1);
  if (type === '1' || type === '2') put(m.data ?? '', 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/** A ustar archive (no compression), as the data.tar of a .deb. */
export function tar(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const type = m.tarType ?? TYPE_OF.get(m.mode & 0o170000) ?? '0';
    const data = type === '0' ? Buffer.from(m.data ?? '') : Buffer.alloc(0);
    parts.push(tarHeader(m, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** An ar archive member: 60-byte header, data, padded to even length. */
function arMember(name: string, data: Buffer): Buffer {
  const header = `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`;
  return Buffer.concat([Buffer.from(header, 'latin1'), data, data.length % 2 ? Buffer.from('\n') : Buffer.alloc(0)]);
}

/** A .deb (format 2.0) whose data.tar is `data`, uncompressed, as dpkg-deb reads it. */
export function deb(data: Buffer): Buffer {
  const control = tar([
    {
      name: './control',
      mode: 0o100644,
      data: 'Package: hostile\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.invalid>\nDescription: x\n',
    },
  ]);
  return Buffer.concat([
    Buffer.from('!<arch>\n'),
    arMember('debian-binary', Buffer.from('2.0\n')),
    arMember('control.tar', control),
    arMember('data.tar', data),
  ]);
}
