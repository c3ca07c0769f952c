/**
 * The content-addressed store of kernel header packages (.deb, or .rpm for kernel-devel
 * packages, unpacked in JS by packages/rpm.ts): each is downloaded once, verified
 * against the SHA256 and size recorded in target.json, and unpacked once into a read-only tree
 * that any number of builds mount. Nothing enters the store unverified or half-unpacked: every
 * step writes to a temp name and renames. The kernel images and guest packages test-driver boots
 * live here too, as verified package files (see boot/kernel-image.ts).
 */
import { KeyedRuns } from '../core/pool.ts';
import { withLock } from '../core/file-lock.ts';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, lstat, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KmatrixError } from '../core/errors.ts';
import { byteProgress } from '../core/progress.ts';
import {
  failureReason,
  HttpStatusError,
  requestDeadline,
  RetriesExhausted,
  BodySizeError,
  withRetries,
} from '../core/fetch.ts';
import type { HeaderPackage, ImagePackage, ListedImage } from '../model/kernel-list.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { extractRpm, isRpm, RpmError } from './rpm.ts';
import { DebError, extractDeb } from './deb.ts';
import { CpioError } from './cpio.ts';

/** In-process runs per store folder (see HeaderStore.runs). */
const RUNS_BY_STORE = new Map<string, KeyedRuns<string>>();

export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KMATRIX_STORE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kmatrix');
}

/** A package's bytes in the store, and the URL that served them. */
export interface Fetched {
  sha256: string;
  size: number;
  url: string;
}

/** No URL served the package: each URL with why (an HTTP status, a network error). */
export interface Unavailable {
  unavailable: { url: string; reason: string; attempts?: number }[];
}

/** "HTTP 400 from URL; connection reset from URL2 (4 attempts)". */
export function unavailableText(u: Unavailable): string {
  return u.unavailable
    .map((x) => `${x.reason} from ${x.url}${x.attempts ? ` (${x.attempts} attempts)` : ''}`)
    .join('; ');
}

/** The bytes that arrived are not the ones the index pinned (nothing was stored). */
export class DigestMismatchError extends KmatrixError {}

/** This machine cannot write to the store (full disk, read-only): no mirror or retry can help. */
export class StoreWriteError extends KmatrixError {}

export class HeaderStore {
  readonly dir: string;
  private readonly log: (line: string) => void;
  /**
   * Each package is downloaded and unpacked once per process, however many builds ask at once
   * (every HeaderStore of one folder shares these: a --batch run makes one per build), and once
   * per store across processes (Nx's one process per task): a lock per package.
   */
  private readonly runs: KeyedRuns<string>;

  constructor(dir: string, log: (line: string) => void = () => {}) {
    this.dir = dir;
    this.log = log;
    const key = resolve(dir);
    const runs = RUNS_BY_STORE.get(key) ?? new KeyedRuns<string>({ remember: true });
    RUNS_BY_STORE.set(key, runs);
    this.runs = runs;
  }

  debPath(sha256: string): string {
    return join(this.dir, 'debs', `${sha256}.deb`);
  }

  treePath(sha256: string): string {
    return join(this.dir, 'trees', sha256);
  }

  /** The unpacked, read-only tree of a package; downloads and unpacks it on first use. */
  tree(pkg: HeaderPackage): Promise<string> {
    return this.runs.run(pkg.sha256, () => this.materialize(pkg));
  }

  /**
   * The verified package file itself, not unpacked (kernel images, the guest's busybox): most of a
   * kernel image is modules nobody boots. Bytes that do not match are fetched once more (a mirror
   * caught mid-sync) before that is an error.
   */
  package(pkg: ImagePackage): Promise<string> {
    return this.runs.run(`file:${pkg.sha256}`, async () => {
      const deb = this.debPath(pkg.sha256);
      if (existsSync(deb)) return deb;
      return this.exclusively(pkg, async () => {
        if (existsSync(deb)) return deb; // another process fetched it while we waited
        try {
          await this.download(pkg);
        } catch (error) {
          if (!(error instanceof DigestMismatchError)) throw error;
          this.log(`${error.message}; fetching it once more`);
          await this.download(pkg);
        }
        return deb;
      });
    });
  }

  private async materialize(pkg: HeaderPackage): Promise<string> {
    const tree = this.treePath(pkg.sha256);
    if (existsSync(tree)) return tree;
    return this.exclusively(pkg, async () => {
      if (existsSync(tree)) return tree; // another process unpacked it while we waited
      const deb = this.debPath(pkg.sha256);
      if (!existsSync(deb)) await this.download(pkg);
      await this.unpack(pkg, deb, tree);
      return tree;
    });
  }

  /**
   * One process of all that share this store fetches a package; the others wait, then find it.
   * Only an optimisation (every write is a temp file renamed into place), so a wait that goes on
   * too long ends, and the waiter fetches the package itself.
   */
  private exclusively<T>(pkg: ImagePackage, fn: () => Promise<T>): Promise<T> {
    const lock = join(this.dir, 'locks', `package-${pkg.sha256}`);
    return withLock(
      lock,
      () => this.log(`waiting for another kmatrix fetching ${pkg.name} ${pkg.version} (${lock})`),
      fn,
      {
        maxWaitMs: 10 * 60_000,
        onGiveUp: () => this.log(`waited 10 minutes for ${lock}; fetching ${pkg.name} ${pkg.version} here as well`),
      },
    );
  }

  /**
   * Fetches a package whose digest nobody recorded yet (kernel-crawler lists only URLs): tries
   * each URL in turn, hashes what arrives and keeps it under its SHA256, so the later build finds
   * it in the store. The answer is remembered per URL, so a URL is resolved once per store. A
   * package no URL serves — whatever the reason: 4xx, 5xx after retries, DNS, TLS, a reset, a short
   * body — is `unavailable`, with each URL's reason: it costs its own kernel, never the whole gen.
   * Only this machine's own trouble (a full disk) is an error.
   */
  async resolve(pkg: ListedImage): Promise<Fetched | Unavailable> {
    const urls = [pkg.url, ...(pkg.alternatives ?? [])];
    for (const url of urls) {
      const known = await this.knownDigest(url);
      if (known) return { ...known, url };
    }
    this.log(`resolving the SHA256 of ${pkg.name} ${pkg.version}`);
    const got = await this.fetchInto(pkg, urls);
    if ('unavailable' in got) return got;
    await mkdir(join(this.dir, 'urls'), { recursive: true });
    await writeFileAtomic(
      this.urlRecord(got.url),
      `${JSON.stringify({ url: got.url, sha256: got.sha256, size: got.size })}\n`,
    );
    return got;
  }

  private urlRecord(url: string): string {
    return join(this.dir, 'urls', `${createHash('sha256').update(url).digest('hex')}.json`);
  }

  private async knownDigest(url: string): Promise<{ sha256: string; size: number } | undefined> {
    try {
      const r = JSON.parse(await readFile(this.urlRecord(url), 'utf8')) as {
        url: string;
        sha256: string;
        size: number;
      };
      // Only trust a record whose package is still in the store, exactly as recorded.
      const st = await stat(this.debPath(r.sha256));
      return r.url === url && st.size === r.size ? { sha256: r.sha256, size: r.size } : undefined;
    } catch {
      return undefined;
    }
  }

  private async download(pkg: ImagePackage): Promise<void> {
    const got = await this.fetchInto(pkg, [pkg.url, ...(pkg.alternatives ?? [])], pkg);
    if (!('unavailable' in got)) return;
    const gone = got.unavailable.every((u) => u.reason === 'HTTP 404' || u.reason === 'HTTP 410');
    throw new KmatrixError(
      gone
        ? `no mirror serves ${pkg.name} ${pkg.version} any more (${unavailableText(got)})`
        : `cannot download ${pkg.name} ${pkg.version}: ${unavailableText(got)}`,
      {
        stage: 'headers',
        remedy: gone
          ? 'the archive dropped this package: re-run `npx kmatrix crawl` (or fetch a fresh kernel-crawler list) and `npx kmatrix gen`'
          : 'check the network path to the mirror and try again',
      },
    );
  }

  /**
   * Streams the first URL that answers into debs/<sha256>.deb; network errors and 5xx are retried
   * per URL, then the next URL is tried. With `expect`, anything but those exact bytes is refused
   * and nothing is stored.
   */
  private async fetchInto(pkg: ListedImage, urls: string[], expect?: ImagePackage): Promise<Fetched | Unavailable> {
    await mkdir(join(this.dir, 'debs'), { recursive: true });
    await mkdir(join(this.dir, 'partial'), { recursive: true });
    const unavailable: Unavailable['unavailable'] = [];
    for (const url of urls) {
      if (expect) this.log(`downloading ${pkg.name} ${pkg.version} (${(expect.size / 1e6).toFixed(1)} MB)`);
      try {
        return await withRetries(
          `download of ${url}`,
          { stage: 'headers', onRetry: (n, why) => this.log(`  retry ${n}: ${why}`) },
          () => this.fetchExclusive(pkg, url, expect),
        );
      } catch (error) {
        // Bytes that do not match, or a store we cannot write: another mirror cannot help.
        if (error instanceof DigestMismatchError || error instanceof StoreWriteError) throw error;
        unavailable.push({
          url,
          reason: failureReason(error),
          ...(error instanceof RetriesExhausted && error.attempts > 1 ? { attempts: error.attempts } : {}),
        });
      }
    }
    return { unavailable };
  }

  /** Where a download from `url` that was cut short waits to be resumed (HTTP Range). */
  private partialPath(url: string): string {
    return join(this.dir, 'partial', createHash('sha256').update(url).digest('hex').slice(0, 32));
  }

  /**
   * One attempt at `url`, resuming what an earlier attempt (or run) left in the partial file with
   * a Range request. A server that ignores the range (200), refuses it (416) or answers another
   * range starts the file over; the SHA256 and size checks are over the whole file either way,
   * and bytes that fail them are deleted, never resumed.
   */
  /**
   * One writer per partial file: a download of a URL that another process (or a retry still
   * draining) is writing goes to a private file of its own instead — no resume, never interleaved.
   */
  private async fetchExclusive(pkg: ListedImage, url: string, expect?: ImagePackage): Promise<Fetched> {
    const shared = this.partialPath(url);
    let mine: string | undefined;
    try {
      return await withLock(
        `${shared}.lock`,
        () => {},
        () => this.fetchOne(pkg, url, mine ?? shared, expect),
        {
          maxWaitMs: 0,
          onGiveUp: () => {
            mine = `${shared}.${process.pid}-${randomBytes(4).toString('hex')}`;
          },
        },
      );
    } finally {
      if (mine) await rm(mine, { force: true });
    }
  }

  private async fetchOne(pkg: ListedImage, url: string, partial: string, expect?: ImagePackage): Promise<Fetched> {
    // 30 s of silence ends the attempt; in all, a slow but steady mirror (32 KiB/s) still
    // finishes, and a download of unknown size gets 30 minutes.
    const expectedSize = expect?.size ?? pkg.size;
    const deadline = requestDeadline(30_000, expectedSize ? 300_000 + (expectedSize / 32_768) * 1000 : 1_800_000);
    // Resume only what can be checked whole: bytes of a known SHA256 or at least a known size.
    if (!expect && !pkg.size) await rm(partial, { force: true });
    const { response, offset } = await this.requestFrom(url, partial, deadline.signal);
    deadline.progress();
    const declared = Number(response.headers.get('content-length') ?? NaN) + offset;
    const hash = createHash('sha256');
    if (offset > 0) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
    let size = offset;
    const total = expectedSize ?? (Number.isFinite(declared) ? declared : undefined);
    const progress = byteProgress(`${pkg.name} ${pkg.version}`, total, this.log, undefined, offset);
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
    body.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      progress.advance(chunk.length);
      deadline.progress();
    });
    try {
      await pipeline(body, createWriteStream(partial, { flags: offset > 0 ? 'a' : 'w' })).catch(
        async (error: NodeJS.ErrnoException) => {
          const full = storeWriteError(this.dir, error);
          // A store that cannot be written keeps nothing; a cut connection keeps what arrived.
          if (full) await rm(partial, { force: true });
          throw full ?? error;
        },
      );
    } finally {
      deadline.done();
      progress.done();
    }
    // The size the index (or the list) states, else what the server declared.
    const wanted = expectedSize ?? declared;
    if (Number.isFinite(wanted) && size < wanted)
      throw new BodySizeError(`the download stopped at ${size} of ${wanted} bytes`); // kept: the next attempt resumes
    const actual = hash.digest('hex');
    // Pinned bytes of another size are a digest mismatch (below); a listed size is checked here.
    const wrong =
      !expect && pkg.size && size !== pkg.size
        ? new BodySizeError(`the download is ${size} bytes, the list says ${pkg.size}`)
        : expect && (actual !== expect.sha256 || size !== expect.size)
          ? new DigestMismatchError(
              `SHA256 mismatch for ${pkg.name} ${pkg.version}: expected ${expect.sha256} (${expect.size} bytes), got ${actual} (${size} bytes) from ${url}`,
              {
                stage: 'headers',
                remedy:
                  'the archive or mirror serves different bytes than the index said: re-run `npx kmatrix crawl` and `npx kmatrix gen`, or fix the mirror; nothing was stored',
              },
            )
          : undefined;
    if (wrong) {
      await rm(partial, { force: true });
      throw wrong;
    }
    await rename(partial, this.debPath(actual));
    return { sha256: actual, size, url };
  }

  /** The response to a GET of `url`, resumed at the partial file's size when the server honours it. */
  private async requestFrom(
    url: string,
    partial: string,
    signal: AbortSignal,
  ): Promise<{ response: Response & { body: ReadableStream }; offset: number }> {
    const have = (await stat(partial).catch(() => undefined))?.size ?? 0;
    if (have > 0) {
      const response = await fetch(url, { signal, headers: { range: `bytes=${have}-` } });
      const resumed = response.headers.get('content-range')?.match(/^bytes (\d+)-\d+\/(\d+|\*)$/);
      if (response.status === 206 && response.body && Number(resumed?.[1]) === have) {
        this.log(`  resuming ${url} at ${(have / 1e6).toFixed(1)} MB`);
        return { response: response as Response & { body: ReadableStream }, offset: have };
      }
      if (response.status === 200 && response.body)
        return { response: response as Response & { body: ReadableStream }, offset: 0 };
      await response.body?.cancel();
      // 416 or another range than asked: what we have is not a prefix the server will complete.
      if (response.status !== 416 && response.status !== 206) throw new HttpStatusError(url, response.status);
      await rm(partial, { force: true });
    }
    const response = await fetch(url, { signal });
    if (!response.ok || !response.body) throw new HttpStatusError(url, response.status);
    return { response: response as Response & { body: ReadableStream }, offset: 0 };
  }

  private async unpack(pkg: HeaderPackage, deb: string, tree: string): Promise<void> {
    await mkdir(join(this.dir, 'trees'), { recursive: true });
    const tmp = `${tree}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(tmp);
      if (isRpm(await readHead(deb))) await extractRpm(deb, tmp);
      else await extractDeb(deb, tmp);
      await makeReadOnly(tmp);
      try {
        await rename(tmp, tree);
      } catch (error) {
        // Another build unpacked the same package first: theirs is as good as ours.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      }
    } catch (error) {
      if (error instanceof KmatrixError) throw error;
      const stderr = (error as { stderr?: string }).stderr ?? '';
      const noSpace = storeWriteError(
        this.dir,
        Object.assign(new Error(`${(error as Error).message} ${stderr}`), {
          code: (error as NodeJS.ErrnoException).code,
        }),
      );
      if (noSpace) throw noSpace;
      if (error instanceof RpmError || error instanceof CpioError || error instanceof DebError) {
        throw new KmatrixError(`cannot unpack ${pkg.name}: ${error.message}`, {
          stage: 'headers',
          cause: error,
          remedy: `delete ${deb} and run the build again; if it persists, the package itself is damaged`,
        });
      }
      const missing = (error as { code?: string }).code === 'ENOENT';
      throw new KmatrixError(
        missing ? '`dpkg-deb` is not installed' : `cannot unpack ${pkg.name}: ${(error as Error).message}`,
        {
          stage: 'headers',
          cause: error,
          remedy: missing ? 'install it: apt-get install -y dpkg' : `delete ${deb} and run the build again`,
        },
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(8), 0, 8, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * A full disk or a read-only store is not a network fault: retrying or trying another mirror
 * cannot help, so it is reported at once, with what to do.
 */
function storeWriteError(dir: string, error: NodeJS.ErrnoException): StoreWriteError | undefined {
  const code = error.code ?? (/No space left on device/.test(error.message) ? 'ENOSPC' : undefined);
  if (!code || !['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES'].includes(code)) return undefined;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new StoreWriteError(`cannot write to the header store ${dir}: ${full ? 'no space left on device' : code}`, {
    stage: 'headers',
    remedy: full
      ? `free space there (downloaded packages live in ${dir}/debs, unpacked trees in ${dir}/trees) or point KMATRIX_STORE at a larger disk; nothing partial was kept`
      : `make ${dir} writable for this user or point KMATRIX_STORE elsewhere`,
  });
}

/** Files lose their write bits; folders keep theirs so the store can still be cleaned up. */
async function makeReadOnly(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await makeReadOnly(p);
    else if (entry.isFile()) {
      const st = await lstat(p);
      await chmod(p, st.mode & 0o555);
    }
  }
}
