/**
 * A self-hosted Nx remote cache (the protocol Nx's client speaks through
 * NX_SELF_HOSTED_REMOTE_CACHE_SERVER): `GET`/`PUT /v1/cache/{hash}`, plus `/healthz` and a
 * read-only listing for `kmatrix cache ls`. The server is where integrity lives (Nx verifies
 * nothing it downloads): every body's SHA256 and size are recorded at PUT and checked before it
 * is served — hashed on its first GET, again whenever the stored file changed (its inode, size or
 * mtime) and at least hourly; a body that no longer matches is quarantined and answered as a
 * miss, so the task rebuilds and replaces it.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { targetOfArchive } from './archive.ts';
import { objectKey, type BlobStore, type ObjectMeta } from './blob-store.ts';
import type { Client, TokenRing } from './tokens.ts';

export interface ServerOptions {
  store: BlobStore;
  tokens: TokenRing;
  /** Evict main's least-recently-used objects when main holds more than this (0: no limit). */
  maxBytes: number;
  /** The same for every other namespace, each on its own (0: no limit). A writer only ever
   * evicts its own namespace's objects, so a pull request cannot push main's out. */
  namespaceMaxBytes: number;
  /** Objects of namespaces other than main unused for this long are removed (a closed pull
   * request's). 0: kept until evicted. */
  namespaceTtlMs?: number;
  /** Largest accepted PUT body. */
  maxBody: number;
  /** One JSON line per request (never a token). */
  log: (entry: Record<string, unknown>) => void;
  /** Timeouts in ms; the defaults suit a cache on a network (tests shorten them). */
  timeouts?: Partial<Timeouts>;
  /** A verified body is hashed again on the first GET after this long (default: an hour). */
  reverifyMs?: number;
  /** Serve HTTPS with this certificate chain and key (PEM); plain HTTP without. */
  tls?: { cert: Buffer; key: Buffer };
}

export interface Timeouts {
  /** A request's headers must arrive within this. */
  headers: number;
  /** A connection that sends or receives nothing for this long is closed (a stalled upload). */
  idle: number;
  /** A whole request, upload included, must finish within this. */
  request: number;
  /** On shutdown, requests still running after this are cut. */
  shutdown: number;
}

const TIMEOUTS: Timeouts = { headers: 30_000, idle: 60_000, request: 30 * 60_000, shutdown: 30_000 };

const HASH = /^[0-9]{1,40}$/;
/** Rewriting an object's metadata on every GET would be a write per read; a minute is precise enough for LRU. */
const TOUCH_EVERY_MS = 60_000;

/** How a GET knew its body was whole: hashed now, or the same stored bytes as a recent hash. */
type Verify = 'hashed' | 'known';

class Reply {
  readonly status: number;
  readonly text: string;
  readonly headers: Record<string, string>;
  constructor(status: number, text: string, headers: Record<string, string> = {}) {
    this.status = status;
    this.text = text;
    this.headers = headers;
  }
}

export class CacheServer {
  private readonly options: ServerOptions;
  private readonly http: Server;
  private readonly index = new Map<string, ObjectMeta>();
  private readonly publishing = new Map<string, Promise<unknown>>();
  private readonly timeouts: Timeouts;
  private inFlight = 0;
  private readonly sockets = new Set<Socket>();
  private expiredAt = 0;
  private drained: (() => void) | undefined;
  /** Bytes held per namespace. */
  private readonly held = new Map<string, number>();
  /** Bodies hashed and found whole: by object key, the store's identity of the bytes and when. */
  private readonly verified = new Map<string, { identity: string; at: number }>();
  private readonly reverifyMs: number;

  constructor(options: ServerOptions) {
    this.options = options;
    this.reverifyMs = options.reverifyMs ?? 3_600_000;
    this.timeouts = { ...TIMEOUTS, ...options.timeouts };
    // No request may take the process down: whatever escapes the handler is logged and answered.
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((error: unknown) => {
        this.options.log({ level: 'error', message: `request failed: ${(error as Error)?.message ?? String(error)}` });
        if (!res.headersSent)
          res.writeHead(500, { 'content-type': 'text/plain', connection: 'close' }).end('internal error\n');
        else res.destroy();
      });
    };
    // A TLS handshake that never ends is held to the headers' deadline too (Node's default: 120 s).
    this.http = options.tls
      ? createTlsServer({ ...options.tls, handshakeTimeout: this.timeouts.headers }, onRequest)
      : createServer(onRequest);
    // Every socket, handshaken or not, so shutdown can cut the ones HTTP never saw.
    this.http.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // A slow client may upload a big entry, but never hold a connection (and a temp file) forever.
    this.http.headersTimeout = this.timeouts.headers;
    this.http.requestTimeout = this.timeouts.request;
    this.http.setTimeout(this.timeouts.idle, (socket) => socket.destroy());
  }

  /** Opens the store and learns what it holds (for 409s and eviction without a lookup per request). */
  async open(): Promise<number> {
    await this.options.store.init();
    for (const meta of await this.options.store.list()) {
      this.index.set(objectKey(meta.namespace, meta.hash), meta);
      this.count(meta.namespace, meta.size);
    }
    return this.index.size;
  }

  async listen(port: number, host: string): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => resolve());
    });
    const address = this.http.address() as AddressInfo;
    return `${this.options.tls ? 'https' : 'http'}://${address.address}:${address.port}`;
  }

  /** Stops accepting, lets requests in flight (uploads included) finish, then resolves. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    if (this.inFlight > 0) {
      // Uploads in flight may finish, within the shutdown deadline: a stalled one cannot hold shutdown.
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.timeouts.shutdown)));
      await Promise.race([drained, deadline]);
      clearTimeout(timer);
    }
    this.http.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    this.inFlight++;
    let client: Client | undefined;
    let status = 500;
    let bytes = 0;
    let verify: Verify | undefined;
    // The raw path: URL parsing would resolve %2E%2E and friends first (and throws on some paths).
    const raw = (req.url ?? '/').split('?')[0]!;
    try {
      if (raw === '/healthz' && req.method === 'GET') {
        status = 200;
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      client = this.options.tokens.identify(req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1]);
      if (raw.startsWith('/v1/cache/')) {
        if (!client) throw new Reply(401, 'missing or unknown token\n');
        const hash = raw.slice('/v1/cache/'.length);
        if (!HASH.test(hash)) throw new Reply(400, 'the hash must be decimal digits\n');
        if (req.method === 'GET') ({ status, bytes, verify } = await this.get(client, hash, res));
        else if (req.method === 'PUT') ({ status, bytes } = await this.put(client, hash, req, res));
        else throw new Reply(405, 'GET or PUT\n', { allow: 'GET, PUT' });
        return;
      }
      if (raw === '/v1/kmatrix/objects' && req.method === 'GET') {
        if (!client) throw new Reply(401, 'missing or unknown token\n');
        const visible = [client.namespace, ...client.readFrom];
        const body = JSON.stringify([...this.index.values()].filter((o) => visible.includes(o.namespace)));
        status = 200;
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        return;
      }
      throw new Reply(404, 'not found\n');
    } catch (error) {
      const reply = error instanceof Reply ? error : new Reply(500, 'internal error\n');
      if (!(error instanceof Reply)) this.options.log({ level: 'error', message: (error as Error).message });
      status = reply.status;
      if (!res.headersSent)
        res
          .writeHead(reply.status, {
            'content-type': 'text/plain',
            // A refused upload's body may still be arriving: close rather than read it. Otherwise the
            // client's own Connection header decides.
            ...(status >= 400 && req.method === 'PUT' ? { connection: 'close' } : {}),
            ...reply.headers,
          })
          .end(reply.text);
      else res.destroy();
    } finally {
      this.options.log({
        time: new Date().toISOString(),
        method: req.method,
        path: raw.slice(0, 200),
        status,
        bytes,
        ...(verify ? { verify } : {}),
        ms: Date.now() - started,
        client: client?.name ?? 'anonymous',
        namespace: client?.namespace,
      });
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  private async get(
    client: Client,
    hash: string,
    res: ServerResponse,
  ): Promise<{ status: number; bytes: number; verify: Verify }> {
    for (const ns of [client.namespace, ...client.readFrom]) {
      const key = objectKey(ns, hash);
      // What this server recorded at PUT (or read at start) is the object's metadata: no read per GET.
      const found = await this.options.store.get(ns, hash, this.index.get(key));
      if (!found) continue;
      try {
        const verify: Verify = this.isVerified(key, found.identity) ? 'known' : 'hashed';
        const { sha256, size } = verify === 'known' ? found.meta : await digestOf(found.read());
        if (sha256 !== found.meta.sha256 || size !== found.meta.size) {
          const reason = `stored body is ${size} bytes with sha256 ${sha256}, recorded ${found.meta.size} bytes with ${found.meta.sha256}`;
          await this.options.store.quarantine(ns, hash, reason);
          this.forget(ns, hash);
          this.options.log({
            level: 'warning',
            message: `quarantined ${ns}/${hash}: ${reason}; answered as a miss so the task rebuilds`,
          });
          throw new Reply(404, 'not found (the stored object failed verification and was quarantined)\n');
        }
        if (found.identity) this.verified.set(key, { identity: found.identity, at: Date.now() });
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
        await pipeline(found.read(), res);
        const meta = this.index.get(key);
        if (meta && Date.now() - Date.parse(meta.lastAccess) > TOUCH_EVERY_MS) {
          meta.lastAccess = new Date().toISOString();
          await this.options.store.touch(meta);
        }
        return { status: 200, bytes: size, verify };
      } finally {
        await found.release();
      }
    }
    throw new Reply(404, 'not found\n');
  }

  /**
   * Whether this exact stored body (same identity) was hashed and matched within reverifyMs. A
   * body re-hashed on every GET made 500 concurrent GETs of 1 MiB take 5.4 s at the median; any
   * write to it or replacement changes its identity, and the bytes are hashed again at least every
   * reverifyMs against what a disk may do behind the file system's back.
   */
  private isVerified(key: string, identity: string | undefined): boolean {
    const seen = this.verified.get(key);
    return identity !== undefined && seen?.identity === identity && Date.now() - seen.at < this.reverifyMs;
  }

  /** The upload's declared length, if this client may upload that much here; a Reply otherwise. */
  private admit(client: Client, req: IncomingMessage): number {
    if (client.access !== 'write') throw new Reply(403, 'this token may only read\n');
    const declared = req.headers['content-length'];
    if (declared === undefined || !/^\d+$/.test(declared)) throw new Reply(411, 'Content-Length is required\n');
    const length = Number(declared);
    if (length > this.options.maxBody) throw new Reply(413, `body larger than ${this.options.maxBody} bytes\n`);
    const budget = this.budgetOf(client.namespace);
    // Stored and then evicted at once, it would be answered "stored" and never served.
    if (budget > 0 && length > budget * 0.9)
      throw new Reply(413, `body larger than this namespace's budget allows (${Math.floor(budget * 0.9)} bytes)\n`);
    return length;
  }

  private async put(
    client: Client,
    hash: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<{ status: number; bytes: number }> {
    const length = this.admit(client, req);
    const key = objectKey(client.namespace, hash);
    if (this.index.has(key)) throw new Reply(409, 'exists\n');

    const tmp = await this.options.store.tempPath();
    try {
      const hasher = createHash('sha256');
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        hasher.update(chunk);
        size += chunk.length;
      });
      try {
        await pipeline(req, createWriteStream(tmp));
      } catch {
        throw new Reply(400, 'upload interrupted\n'); // the client went away: nothing is stored
      }
      if (size !== length)
        throw new Reply(400, `body is ${size} bytes, Content-Length said ${length}; nothing stored\n`);
      const now = new Date().toISOString();
      const target = await targetOfArchive(tmp);
      const meta: ObjectMeta = {
        namespace: client.namespace,
        hash,
        sha256: hasher.digest('hex'),
        size,
        createdAt: now,
        lastAccess: now,
        writer: client.name,
        ...(target ? { target } : {}),
      };
      // One publish per key at a time: concurrent PUTs of one hash leave one whole object.
      const previous = this.publishing.get(key) ?? Promise.resolve();
      const mine = previous.then(() => this.options.store.publish(tmp, meta));
      const settled = mine.then(
        () => {},
        () => {},
      );
      this.publishing.set(key, settled);
      const outcome = await mine.finally(() => {
        // The last publish of a key clears its slot (the map holds the settled promise).
        if (this.publishing.get(key) === settled) this.publishing.delete(key);
      });
      if (outcome === 'exists') throw new Reply(409, 'exists\n');
      this.index.set(key, meta);
      this.count(client.namespace, size);
      // Evict before answering: once a PUT is acknowledged the store is within its budget (a
      // client that reads right after its PUT saw evictions racing the answer). The object is
      // stored either way: a failed eviction is logged, not answered as a failed PUT.
      await this.evict(client.namespace).catch((error: Error) =>
        this.options.log({ level: 'error', message: `eviction failed: ${error.message}` }),
      );
      res.writeHead(200, { 'content-type': 'text/plain' }).end('stored\n');
      return { status: 200, bytes: size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private count(ns: string, bytes: number): void {
    this.held.set(ns, (this.held.get(ns) ?? 0) + bytes);
  }

  /**
   * Removes the objects of namespaces other than main that nobody used for the TTL: pull requests
   * end, their namespaces must not hold disk forever. On a PUT, at most once an hour (or a tenth of the TTL).
   */
  private async expire(): Promise<void> {
    const ttl = this.options.namespaceTtlMs ?? 0;
    if (ttl <= 0 || Date.now() - this.expiredAt < Math.min(3_600_000, ttl / 10)) return;
    this.expiredAt = Date.now();
    const cutoff = new Date(Date.now() - ttl).toISOString();
    for (const meta of [...this.index.values()]) {
      if (meta.namespace === 'main' || meta.lastAccess >= cutoff) continue;
      await this.options.store.remove(meta.namespace, meta.hash);
      this.forget(meta.namespace, meta.hash);
      this.options.log({
        level: 'info',
        message: `expired ${meta.namespace}/${meta.hash} (last used ${meta.lastAccess})`,
      });
    }
  }

  private forget(ns: string, hash: string): void {
    const key = objectKey(ns, hash);
    this.verified.delete(key);
    const meta = this.index.get(key);
    if (meta) this.count(ns, -meta.size);
    this.index.delete(key);
  }

  /**
   * The namespace's least recently used objects first, down to 90% of its budget, so eviction does
   * not run on every PUT. Only the writer's own namespace: no one's PUT evicts another's objects.
   */
  private budgetOf(ns: string): number {
    return ns === 'main' ? this.options.maxBytes : this.options.namespaceMaxBytes;
  }

  private async evict(ns: string): Promise<void> {
    await this.expire();
    const budget = this.budgetOf(ns);
    if (budget <= 0 || (this.held.get(ns) ?? 0) <= budget) return;
    const byAge = [...this.index.values()]
      .filter((m) => m.namespace === ns)
      .sort((a, b) => a.lastAccess.localeCompare(b.lastAccess));
    for (const meta of byAge) {
      if ((this.held.get(ns) ?? 0) <= budget * 0.9) break;
      await this.options.store.remove(meta.namespace, meta.hash);
      this.forget(meta.namespace, meta.hash);
      this.options.log({
        level: 'info',
        message: `evicted ${meta.namespace}/${meta.hash} (${meta.size} bytes, last used ${meta.lastAccess})`,
      });
    }
  }
}

async function digestOf(body: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  body.on('data', (chunk: Buffer) => (size += chunk.length));
  await pipeline(body, hash);
  return { sha256: hash.digest('hex'), size };
}
