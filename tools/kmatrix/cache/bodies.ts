/**
 * The cache server's bodies as they stream: an upload hashed on its way to a temp file, a stored
 * body hashed (and, when small, kept) as it is read, and the HTTP answer a request ends with.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ARCHIVE_HEAD_BYTES } from './archive.ts';
import type { ByteBudget } from './byte-budget.ts';

/** An answer other than 200, thrown from deep in a request and sent by its handler. */
export class Reply {
  readonly status: number;
  readonly text: string;
  readonly headers: Record<string, string>;
  constructor(status: number, text: string, headers: Record<string, string> = {}) {
    this.status = status;
    this.text = text;
    this.headers = headers;
  }
}

/**
 * An upload, into `tmp`: its SHA256 and size, and its first bytes (where an entry names its
 * target). A Reply when it is cut short or the store is full.
 *
 * An upload no bigger than the head is held whole, within a budget shared by all uploads in
 * flight, and written in one synchronous call: as a stream it cost four trips through the thread
 * pool and the event loop, the most of a small PUT under load. Any other streams to disk as it
 * arrives, holding nothing, and its head is read back (one read).
 */
export async function receive(
  req: IncomingMessage,
  tmp: string,
  length: number,
  buffering: ByteBudget,
): Promise<{ sha256: string; size: number; head: Buffer }> {
  const hasher = createHash('sha256');
  let size = 0;
  const whole = length <= ARCHIVE_HEAD_BYTES && buffering.claim(length);
  try {
    if (whole) {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) {
        hasher.update(chunk);
        chunks.push(chunk);
        size += chunk.length;
      }
      checkLength(size, length);
      const body = Buffer.concat(chunks, size);
      // Created read-only, so publishing it needs no chmod.
      writeFileSync(tmp, body, { mode: 0o444 });
      return { sha256: hasher.digest('hex'), size, head: body };
    }
    req.on('data', (chunk: Buffer) => {
      hasher.update(chunk);
      size += chunk.length;
    });
    // (A write to the open handle is allowed whatever the mode it was created with.)
    await pipeline(req, createWriteStream(tmp, { mode: 0o444 }));
    checkLength(size, length);
    return { sha256: hasher.digest('hex'), size, head: await readHead(tmp) };
  } catch (error) {
    throw uploadFailure(error, req);
  } finally {
    if (whole) buffering.release(length);
  }
}

function checkLength(size: number, length: number): void {
  if (size !== length) throw new Reply(400, `body is ${size} bytes, Content-Length said ${length}; nothing stored\n`);
}

/** What an upload that failed is answered: the client's doing (400), a full store (507), or ours (500). */
function uploadFailure(error: unknown, req: IncomingMessage): unknown {
  if (error instanceof Reply) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new Reply(507, 'the cache store is out of space; nothing stored\n');
  if (!req.complete) return new Reply(400, 'upload interrupted\n'); // the client went away: nothing is stored
  return error;
}

/** The first ARCHIVE_HEAD_BYTES of a file. */
async function readHead(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(ARCHIVE_HEAD_BYTES), 0, ARCHIVE_HEAD_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * The body's SHA256 and size; its bytes too when it is at most `keepUpTo` bytes (0: never), in
 * memory of their own (a small Buffer.concat result is a slice of a shared 8 KiB pool, which a
 * kept copy would pin whole).
 */
export async function digestOf(
  body: Readable,
  keepUpTo: number,
): Promise<{ sha256: string; size: number; body?: Buffer }> {
  const hash = createHash('sha256');
  let size = 0;
  let chunks: Buffer[] | undefined = keepUpTo > 0 ? [] : undefined;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    // A body that grew behind the server's back is hashed to the end but never held.
    if (size > keepUpTo) chunks = undefined;
    chunks?.push(chunk);
  }
  if (!chunks) return { sha256: hash.digest('hex'), size };
  const kept = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(kept, at);
  return { sha256: hash.digest('hex'), size, body: kept };
}
