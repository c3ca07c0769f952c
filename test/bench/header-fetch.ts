/**
 * Bench figure "header fetching": every header package of the full bookworm amd64 matrix (all
 * ABIs × amd64/cloud-amd64/rt-amd64, from the committed kernel list), fetched into an empty store
 * the way builds fetch them (all targets at once). The packages travel through a counting proxy
 * on 127.0.0.1, so "downloaded" is measured on the wire, not taken from our own bookkeeping; the
 * baseline is the bytes that are needed (each unique package once).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import type { HeaderPackage } from '../../tools/kmatrix/model/kernel-list.ts';
import { execa } from 'execa';
import { inParallel } from '../../tools/kmatrix/core/pool.ts';
import { repoRoot } from '../support/workspace.ts';

export interface HeaderFetch {
  packages: number;
  uniqueBytes: number;
  downloadedBytes: number;
  requests: number;
  /** Downloads the store retried (network faults): each one re-fetches bytes */
  retries: number;
  seconds: number;
}

/**
 * `mode`: `shared` — one process and one store object for every target (--batch); `processes` —
 * a process per target, `parallel` at a time, sharing only the store folder (Nx's default).
 */
export async function headerFetch(mode: 'shared' | 'processes' = 'shared', parallel = 2): Promise<HeaderFetch> {
  const list = JSON.parse(await readFile(join(repoRoot, 'kernels/debian-bookworm-x86_64.json'), 'utf8')) as {
    debian: { kmatrix: { packages: HeaderPackage[] } }[];
  };
  let downloadedBytes = 0;
  let requests = 0;
  const proxy = createServer((req, res) => {
    requests++;
    const target = `http://${req.url!.slice(1)}`; // /deb.debian.org/debian/pool/… → the mirror
    void fetch(target).then(
      async (upstream) => {
        res.writeHead(upstream.status, { 'content-length': upstream.headers.get('content-length') ?? undefined });
        if (!upstream.body) return res.end();
        const body = Readable.fromWeb(upstream.body as import('node:stream/web').ReadableStream);
        body.on('data', (chunk: Buffer) => (downloadedBytes += chunk.length));
        body.pipe(res);
      },
      () => res.writeHead(502).end(),
    );
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  const via = (url: string) => `http://127.0.0.1:${port}/${url.replace(/^https?:\/\//, '')}`;

  const targets = list.debian.map((e) =>
    e.kmatrix.packages
      .filter((p) => !p.hostArch || p.hostArch === 'x86_64')
      .map((p) => ({ ...p, url: via(p.url), alternatives: undefined })),
  );
  const unique = new Map(targets.flat().map((p) => [p.sha256, p.size]));
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-bench-store-'));
  let retries = 0;
  const store = new HeaderStore(dir, (line) => {
    if (/^\s*retry \d+:/.test(line)) {
      retries++;
      process.stderr.write(`${line}\n`);
    }
  });
  const start = process.hrtime.bigint();
  try {
    if (mode === 'shared') {
      // Like a run-many: every target asks for its packages at once; shared ones must be fetched once.
      await Promise.all(targets.map((pkgs) => Promise.all(pkgs.map((p) => store.tree(p)))));
    } else {
      // Like Nx without --batch: a process per task; shared packages must still be fetched once.
      const task = join(repoRoot, 'test/support/header-fetch-task.ts');
      await inParallel(
        targets,
        async (pkgs) => {
          const r = await execa(process.execPath, [task, dir], {
            input: JSON.stringify(pkgs),
            reject: false,
            all: true,
          });
          for (const line of r.all.split('\n')) if (/^\s*retry \d+:/.test(line)) retries++;
          if (r.exitCode !== 0) throw new Error(`a fetching process failed:\n${r.all}`);
        },
        parallel,
      );
    }
  } finally {
    proxy.close();
    await rm(dir, { recursive: true, force: true });
  }
  return {
    packages: unique.size,
    uniqueBytes: [...unique.values()].reduce((a, b) => a + b, 0),
    downloadedBytes,
    requests,
    retries,
    seconds: Number(process.hrtime.bigint() - start) / 1e9,
  };
}
