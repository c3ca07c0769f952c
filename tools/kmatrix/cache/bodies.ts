/**
 * The cache server's bodies as they stream: an upload hashed on its way to a temp file, a stored
 * body hashed (and, when small, kept) as it is read, and the HTTP answer a request ends with.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ARCHIVE_HEAD_BYTES } from './archive.ts';

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
 * target) so the entry is not read back to find them. A Reply when it is cut short.
 */
export async function receive(
  req: IncomingMessage,
  tmp: string,
  length: number,
): Promise<{ sha256: string; size: number; head: Buffer }> {
  const hasher = createHash('sha256');
  let size = 0;
  const head: Buffer[] = [];
  const take = (chunk: Buffer) => {
    hasher.update(chunk);
    if (size < ARCHIVE_HEAD_BYTES) head.push(chunk);
    size += chunk.length;
  };
  // An upload no bigger than the head is held whole anyway: it is written in one synchronous
  // call, where a stream cost four trips through the thread pool and the event loop.
  const whole = length <= ARCHIVE_HEAD_BYTES;
  try {
    if (whole) for await (const chunk of req as AsyncIterable<Buffer>) take(chunk);
    else {
      req.on('data', take);
      // Created read-only, so publishing it needs no chmod (a write to the open handle is still allowed).
      await pipeline(req, createWriteStream(tmp, { mode: 0o444 }));
    }
  } catch {
    throw new Reply(400, 'upload interrupted\n'); // the client went away: nothing is stored
  }
  if (size !== length) throw new Reply(400, `body is ${size} bytes, Content-Length said ${length}; nothing stored\n`);
  const first = Buffer.concat(head);
  if (whole) writeFileSync(tmp, first, { mode: 0o444 });
  return { sha256: hasher.digest('hex'), size, head: first.subarray(0, ARCHIVE_HEAD_BYTES) };
}

/** The body's SHA256 and size; its bytes too when it is at most `keepUpTo` bytes (0: never). */
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
  return { sha256: hash.digest('hex'), size, ...(chunks ? { body: Buffer.concat(chunks, size) } : {}) };
}
