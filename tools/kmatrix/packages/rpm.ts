/**
 * Unpacking an .rpm without rpm2cpio: the lead, the signature header and the main header are
 * skipped (the main header tells how the payload is compressed), then the cpio payload is
 * decompressed — gzip and zstd in Node's zlib, xz/lzma with the `xz` program (xz-utils, which
 * tools/setup-host.sh installs) — and extracted by packages/cpio.ts.
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { spawn } from 'node:child_process';
import { extractCpio } from './cpio.ts';

export class RpmError extends Error {}

const LEAD_SIZE = 96;
const TAG_PAYLOADFORMAT = 1124;
const TAG_PAYLOADCOMPRESSOR = 1125;
const TYPE_STRING = 6;

export function isRpm(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32BE(0) === 0xedabeedb;
}

interface Header {
  strings: Map<number, string>;
  end: number;
}

function readHeader(buf: Buffer, at: number): Header {
  if (at + 16 > buf.length || buf.readUInt32BE(at) !== 0x8eade801)
    throw new RpmError(`no rpm header structure at byte ${at} (damaged package?)`);
  const count = buf.readUInt32BE(at + 8);
  const size = buf.readUInt32BE(at + 12);
  const index = at + 16;
  const store = index + count * 16;
  if (store + size > buf.length) throw new RpmError('rpm header runs past the end of the file (truncated?)');
  const strings = new Map<number, string>();
  for (let i = 0; i < count; i++) {
    const e = index + i * 16;
    const [tag, type, offset] = [buf.readUInt32BE(e), buf.readUInt32BE(e + 4), buf.readUInt32BE(e + 8)];
    if (type === TYPE_STRING) {
      const from = store + offset;
      strings.set(tag, buf.toString('utf8', from, buf.indexOf(0, from)));
    }
  }
  return { strings, end: store + size };
}

async function decompress(payload: Buffer, compressor: string): Promise<Buffer> {
  const inNode = (f: () => Buffer) => {
    try {
      return f();
    } catch (error) {
      throw new RpmError(
        `the ${compressor} payload does not decompress (truncated or damaged package?): ${(error as Error).message}`,
      );
    }
  };
  switch (compressor) {
    case 'gzip':
      return inNode(() => gunzipSync(payload));
    case 'zstd':
      return inNode(() => zstdDecompressSync(payload));
    case 'xz':
    case 'lzma':
      return unxz(payload, compressor === 'lzma' ? ['--format=lzma'] : []);
    default:
      throw new RpmError(`rpm payload compressor "${compressor}" is not supported (gzip, xz, lzma, zstd are)`);
  }
}

/** `xz -dc` over a buffer (a plain spawn: the payload can be hundreds of MB). */
function unxz(payload: Buffer, extra: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('xz', ['-dc', ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // xz may stop reading a damaged stream early; its exit code says why
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        new RpmError(
          error.code === 'ENOENT'
            ? 'this .rpm has an xz payload and `xz` is not installed: apt-get install -y xz-utils'
            : error.message,
        ),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else
        reject(
          new RpmError(
            `xz could not decompress the payload: ${Buffer.concat(err).toString().trim() || `exit ${code}`}`,
          ),
        );
    });
    child.stdin.end(payload);
  });
}

/** Extracts the files of an .rpm into `dest` (an existing empty folder). */
export async function extractRpm(file: string, dest: string): Promise<number> {
  const buf = await readFile(file);
  if (!isRpm(buf)) throw new RpmError(`${file} is not an rpm package`);
  const signature = readHeader(buf, LEAD_SIZE);
  const main = readHeader(buf, (signature.end + 7) & ~7); // the signature header is padded to 8 bytes
  const format = main.strings.get(TAG_PAYLOADFORMAT) ?? 'cpio';
  if (format !== 'cpio') throw new RpmError(`rpm payload format "${format}" is not supported (only cpio)`);
  const compressor = main.strings.get(TAG_PAYLOADCOMPRESSOR) ?? 'gzip';
  return extractCpio(await decompress(buf.subarray(main.end), compressor), dest);
}
