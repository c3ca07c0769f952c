/**
 * The content-addressed store of kernel header packages: each .deb is downloaded once, verified
 * against the SHA256 and size recorded in target.json, and unpacked once into a read-only tree
 * that any number of builds mount. Nothing enters the store unverified or half-unpacked: every
 * step writes to a temp name and renames.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, lstat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { KmatrixError } from '../errors.ts';
import { HttpStatusError, withRetries } from '../net/fetch.ts';
import type { HeaderPackage } from '../kernels/schema.ts';

export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KMATRIX_STORE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kmatrix');
}

class TruncatedDownload extends Error {}

export class HeaderStore {
  readonly dir: string;
  private readonly log: (line: string) => void;
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(dir: string, log: (line: string) => void = () => {}) {
    this.dir = dir;
    this.log = log;
  }

  debPath(sha256: string): string {
    return join(this.dir, 'debs', `${sha256}.deb`);
  }

  treePath(sha256: string): string {
    return join(this.dir, 'trees', sha256);
  }

  /** The unpacked, read-only tree of a package; downloads and unpacks it on first use. */
  tree(pkg: HeaderPackage): Promise<string> {
    let p = this.inFlight.get(pkg.sha256);
    if (!p) {
      p = this.materialize(pkg);
      this.inFlight.set(pkg.sha256, p);
      p.catch(() => this.inFlight.delete(pkg.sha256));
    }
    return p;
  }

  private async materialize(pkg: HeaderPackage): Promise<string> {
    const tree = this.treePath(pkg.sha256);
    if (existsSync(tree)) return tree;
    const deb = this.debPath(pkg.sha256);
    if (!existsSync(deb)) await this.download(pkg);
    await this.unpack(pkg, deb, tree);
    return tree;
  }

  private async download(pkg: HeaderPackage): Promise<void> {
    const dest = this.debPath(pkg.sha256);
    await mkdir(join(this.dir, 'debs'), { recursive: true });
    this.log(`downloading ${pkg.name} ${pkg.version} (${(pkg.size / 1e6).toFixed(1)} MB)`);
    await withRetries(`download of ${pkg.url}`, { stage: 'headers', onRetry: (n, why) => this.log(`  retry ${n}: ${why}`) }, async () => {
      const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        const response = await fetch(pkg.url, { signal: AbortSignal.timeout(300_000) });
        if (!response.ok || !response.body) throw new HttpStatusError(pkg.url, response.status);
        const hash = createHash('sha256');
        let size = 0;
        const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
        body.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          size += chunk.length;
        });
        await pipeline(body, createWriteStream(tmp));
        if (size < pkg.size) throw new TruncatedDownload(`download of ${pkg.name} stopped at ${size} of ${pkg.size} bytes`);
        const actual = hash.digest('hex');
        if (actual !== pkg.sha256 || size !== pkg.size) {
          throw new KmatrixError(`SHA256 mismatch for ${pkg.name} ${pkg.version}: expected ${pkg.sha256} (${pkg.size} bytes), got ${actual} (${size} bytes) from ${pkg.url}`, {
            stage: 'headers',
            remedy: 'the archive or mirror serves different bytes than the index said: re-run `npx kmatrix crawl debian` and `npx kmatrix gen`, or fix the mirror; nothing was stored',
          });
        }
        await rename(tmp, dest);
      } finally {
        await rm(tmp, { force: true });
      }
    });
  }

  private async unpack(pkg: HeaderPackage, deb: string, tree: string): Promise<void> {
    await mkdir(join(this.dir, 'trees'), { recursive: true });
    const tmp = `${tree}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await execa('dpkg-deb', ['-x', deb, tmp]);
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
      const missing = (error as { code?: string }).code === 'ENOENT';
      throw new KmatrixError(missing ? '`dpkg-deb` is not installed' : `cannot unpack ${pkg.name}: ${(error as Error).message}`, {
        stage: 'headers',
        cause: error,
        remedy: missing ? 'install it: apt-get install -y dpkg' : `delete ${deb} and run the build again`,
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
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
