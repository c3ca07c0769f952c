/**
 * A self-hosted Nx remote cache (the protocol Nx's client speaks through
 * NX_SELF_HOSTED_REMOTE_CACHE_SERVER): `GET`/`PUT /v1/cache/{hash}`, plus `/healthz` and a
 * read-only listing for `kmatrix cache ls`. The server is where integrity lives (Nx verifies
 * nothing it downloads): every body's SHA256 and size are recorded at PUT and checked before it
 * is served — hashed on its first GET, again whenever the stored file changed (its inode, size,
 * mtime or ctime) and at least hourly; a body that no longer matches is quarantined and answered as a
 * miss, so the task rebuilds and replaces it. Small verified bodies are kept in memory and served
 * from there while the stored file keeps the identity they were hashed under.
 */
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { targetOfArchive } from './archive.ts';
import { digestOf, receive, Reply } from './bodies.ts';
import { objectKey, type BlobStore, type ObjectMeta, type StoredObject } from './blob-store.ts';
import { ByteBudget } from './byte-budget.ts';
import { type Budgets, Holdings } from './holdings.ts';
import { Verified } from './verified.ts';
import type { Client, TokenRing } from './tokens.ts';

export interface ServerOptions extends Budgets {
  store: BlobStore;
  tokens: TokenRing;
  /** Largest accepted PUT body. */
  maxBody: number;
  /** One JSON line per request (never a token). */
  log: (entry: Record<string, unknown>) => void;
  /** Timeouts in ms; the defaults suit a cache on a network (tests shorten them). */
  timeouts?: Partial<Timeouts>;
  /** A verified body is hashed again on the first GET after this long (default: an hour). */
  reverifyMs?: number;
  /** Verified small bodies kept in memory, in bytes (DEFAULT_MEMORY_BYTES; 0: none); as much
   * again may be held while bodies are read to be kept. */
  memoryBytes?: number;
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

/**
 * How a GET knew its body was whole: it hashed it, it waited for another GET's hash of the same
 * bytes, or those bytes were hashed recently.
 */
type Verify = 'hashed' | 'joined' | 'known';
/** Where a GET's bytes came from: the store, or the copy kept in memory when they were hashed. */
type Source = 'store' | 'memory';
/** Bodies up to this size are kept in memory once verified: a built module's entry is well under it. */
export const KEEP_BODIES_UP_TO = 2 ** 20;
export const DEFAULT_MEMORY_BYTES = 64 * 2 ** 20;
/** Small uploads in flight held whole in memory, all together; past it they stream to disk. */
const BUFFERED_UPLOAD_BYTES = 32 * 2 ** 20;

export class CacheServer {
  private readonly options: ServerOptions;
  private readonly http: Server;
  private readonly holdings: Holdings;
  private readonly publishing = new Map<string, Promise<unknown>>();
  private readonly timeouts: Timeouts;
  private inFlight = 0;
  private readonly sockets = new Set<Socket>();
  private drained: (() => void) | undefined;
  private readonly uploads = new ByteBudget(BUFFERED_UPLOAD_BYTES);
  private readonly verified: Verified;
  /** Hashes of stored bodies in progress, by object key: later GETs of the same bytes wait for them. */
  private readonly hashing = new Map<string, { identity: string; done: Promise<Buffer | undefined> }>();

  constructor(options: ServerOptions) {
    this.options = options;
    this.verified = new Verified({
      reverifyMs: options.reverifyMs ?? 3_600_000,
      memoryBytes: options.memoryBytes ?? DEFAULT_MEMORY_BYTES,
      memoryObjectBytes: KEEP_BODIES_UP_TO,
    });
    this.holdings = new Holdings(options.store, options, options.log, (key) => this.verified.forget(key));
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
    for (const meta of await this.options.store.list()) this.holdings.add(meta);
    return this.holdings.size;
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
    let from: Source | undefined;
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
        if (req.method === 'GET') ({ status, bytes, verify, from } = await this.get(client, hash, res));
        else if (req.method === 'PUT') ({ status, bytes } = await this.put(client, hash, req, res));
        else throw new Reply(405, 'GET or PUT\n', { allow: 'GET, PUT' });
        return;
      }
      if (raw === '/v1/kmatrix/objects' && req.method === 'GET') {
        if (!client) throw new Reply(401, 'missing or unknown token\n');
        const visible = [client.namespace, ...client.readFrom];
        const body = JSON.stringify(this.holdings.visibleTo(visible));
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
        ...(verify ? { verify, from } : {}),
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
  ): Promise<{ status: number; bytes: number; verify: Verify; from: Source }> {
    for (const ns of [client.namespace, ...client.readFrom]) {
      const key = objectKey(ns, hash);
      const kept = await this.keptBody(ns, hash, key);
      if (kept) {
        sendBody(res, kept.length, kept);
        await this.touched(key);
        return { status: 200, bytes: kept.length, verify: 'known', from: 'memory' };
      }
      // What this server recorded at PUT (or read at start) is the object's metadata: no read per GET.
      const found = await this.options.store.get(ns, hash, this.holdings.get(key));
      if (!found) continue;
      try {
        const served = await this.serveStored(key, found, res);
        await this.touched(key);
        return { status: 200, ...served };
      } finally {
        await found.release();
      }
    }
    throw new Reply(404, 'not found\n');
  }

  /** The verified copy kept in memory, if the stored body still has the identity it was hashed under. */
  private async keptBody(ns: string, hash: string, key: string): Promise<Buffer | undefined> {
    if (!this.verified.holds(key) || !this.options.store.identify) return undefined;
    return this.verified.body(key, await this.options.store.identify(ns, hash));
  }

  /**
   * Sends a stored body, hashed first unless these very bytes were hashed recently. A body re-hashed
   * on every GET made 500 concurrent GETs of 1 MiB take 5.4 s at the median; any write to it or
   * replacement changes its identity, and the bytes are hashed again at least every reverifyMs
   * against what a disk may do behind the file system's back.
   */
  private async serveStored(
    key: string,
    found: StoredObject,
    res: ServerResponse,
  ): Promise<{ bytes: number; verify: Verify; from: Source }> {
    // (A copy kept in memory was offered before the store was opened: none is here to look for.)
    const { body, verify } = this.verified.isCurrent(key, found.identity)
      ? { body: undefined, verify: 'known' as const }
      : await this.hashOnce(key, found);
    sendBody(res, found.meta.size, body);
    if (!body) await pipeline(found.read(), res);
    // A GET that hashed the body read it from the store, even when it sends the copy it kept.
    return { bytes: found.meta.size, verify, from: body && verify === 'joined' ? 'memory' : 'store' };
  }

  /**
   * Hashes a stored body and records the outcome, once however many GETs of it arrive together
   * (a burst of restores of one entry waits for one hash). Resolves to the bytes when they were
   * kept in memory; rejects with a 404 when they no longer match (the object is quarantined).
   */
  private async hashOnce(key: string, found: StoredObject): Promise<{ body: Buffer | undefined; verify: Verify }> {
    const running = this.hashing.get(key);
    if (running && running.identity === found.identity) return { body: await running.done, verify: 'joined' };
    const done = this.hashAndRecord(key, found).finally(() => {
      if (this.hashing.get(key)?.done === done) this.hashing.delete(key);
    });
    if (found.identity !== undefined) this.hashing.set(key, { identity: found.identity, done });
    return { body: await done, verify: 'hashed' };
  }

  /** A small body is read once: hashed and kept as it is read (within the memory budget). */
  private async hashAndRecord(key: string, found: StoredObject): Promise<Buffer | undefined> {
    const { meta, identity } = found;
    const keep = identity !== undefined && this.verified.claim(meta.size);
    try {
      const read = await digestOf(found.read(), keep ? meta.size : 0);
      if (read.sha256 !== meta.sha256 || read.size !== meta.size) {
        const reason = `stored body is ${read.size} bytes with sha256 ${read.sha256}, recorded ${meta.size} bytes with ${meta.sha256}`;
        await this.options.store.quarantine(meta.namespace, meta.hash, reason);
        this.holdings.forget(meta.namespace, meta.hash);
        this.options.log({
          level: 'warning',
          message: `quarantined ${meta.namespace}/${meta.hash}: ${reason}; answered as a miss so the task rebuilds`,
        });
        throw new Reply(404, 'not found (the stored object failed verification and was quarantined)\n');
      }
      // Evicted, expired or quarantined while it was hashed: nothing to remember it by.
      if (identity !== undefined && this.holdings.get(key) === meta) this.verified.record(key, identity, read.body);
      return read.body;
    } finally {
      if (keep) this.verified.unclaim(meta.size);
    }
  }

  /** Records a GET for LRU eviction, at most once a minute per object. */
  private async touched(key: string): Promise<void> {
    const meta = this.holdings.get(key);
    if (meta && Date.now() - Date.parse(meta.lastAccess) > TOUCH_EVERY_MS) {
      meta.lastAccess = new Date().toISOString();
      await this.options.store.touch(meta);
    }
  }

  /** The upload's declared length, if this client may upload that much here; a Reply otherwise. */
  private admit(client: Client, req: IncomingMessage): number {
    if (client.access !== 'write') throw new Reply(403, 'this token may only read\n');
    const declared = req.headers['content-length'];
    if (declared === undefined || !/^\d+$/.test(declared)) throw new Reply(411, 'Content-Length is required\n');
    const length = Number(declared);
    if (length > this.options.maxBody) throw new Reply(413, `body larger than ${this.options.maxBody} bytes\n`);
    const budget = this.holdings.budgetOf(client.namespace);
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
    if (this.holdings.get(key)) throw new Reply(409, 'exists\n');

    const tmp = await this.options.store.tempPath();
    let published = false;
    try {
      const { sha256, size, head } = await receive(req, tmp, length, this.uploads);
      const now = new Date().toISOString();
      const target = await targetOfArchive(head);
      const meta: ObjectMeta = {
        namespace: client.namespace,
        hash,
        sha256,
        size,
        createdAt: now,
        lastAccess: now,
        writer: client.name,
        ...(target ? { target } : {}),
      };
      const outcome = await this.publishOnce(key, tmp, meta);
      published = outcome === 'created';
      if (outcome === 'exists') throw new Reply(409, 'exists\n');
      this.holdings.add(meta);
      // Evict before answering: once a PUT is acknowledged the store is within its budget (a
      // client that reads right after its PUT saw evictions racing the answer). The object is
      // stored either way: a failed eviction is logged, not answered as a failed PUT.
      await this.holdings
        .evict(client.namespace)
        .catch((error: Error) => this.options.log({ level: 'error', message: `eviction failed: ${error.message}` }));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('stored\n');
      return { status: 200, bytes: size };
    } finally {
      // A published temp file became the object (the store moved or removed it).
      if (!published) await rm(tmp, { force: true });
    }
  }

  /** One publish per key at a time: concurrent PUTs of one hash leave one whole object. */
  private async publishOnce(key: string, tmp: string, meta: ObjectMeta): Promise<'created' | 'exists'> {
    const previous = this.publishing.get(key) ?? Promise.resolve();
    const mine = previous.then(() => this.options.store.publish(tmp, meta));
    const settled = mine.then(
      () => {},
      () => {},
    );
    this.publishing.set(key, settled);
    return mine.finally(() => {
      // The last publish of a key clears its slot (the map holds the settled promise).
      if (this.publishing.get(key) === settled) this.publishing.delete(key);
    });
  }
}

/** A 200 with its length; the body itself when it is in memory (else the caller streams it). */
function sendBody(res: ServerResponse, size: number, body: Buffer | undefined): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  if (body) res.end(body);
}
