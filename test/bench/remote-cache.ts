/**
 * Bench figures "remote cache":
 *
 *   restore: n synthetic targets (each task writes a random module) built once by runner A and
 *   pushed to `kmatrix serve-cache` on 127.0.0.1; a fresh clone restores all n from the server,
 *   against runner A restoring the same n from its local cache (outputs deleted first). Both sides
 *   have a warm project graph; the stock nx client does the work on both. The same restore from a
 *   bare file server holding the same entries is the Nx client's own floor.
 *
 *   load: concurrent clients doing GETs of stored objects and PUTs of new ones against our server
 *   (token check, SHA-256 verified on a body's first GET, atomic publish) vs. a bare Node HTTP server that
 *   serves and stores the same bodies as plain files — the floor for HTTP on this machine.
 *   Every response is checked; any error fails the bench.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheHits, cloneWorkspace, repoRoot, type Workspace, nxBin } from '../support/workspace.ts';
import { READ_TOKEN, WRITE_TOKEN, nxCacheEnv, startCacheServer } from '../support/cache-server.ts';
import { syntheticWorkspace } from './synthetic.ts';
import { measure, type Measured } from './peak-memory.ts';
import { median, percentile } from './stats.ts';

const MODULE_BYTES = 64 * 1024;

export interface Restore {
  targets: number;
  remoteSeconds: number;
  localSeconds: number;
  /** The same restore from a bare file server holding the same entries */
  bareSeconds: number;
  storedBytes: number;
}

async function nx(ws: Workspace, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<Measured> {
  const m = await measure(process.execPath, [nxBin, ...args], { cwd: ws.dir, env: { ...ws.env, ...extra } });
  if (m.exitCode !== 0) throw new Error(`nx ${args.join(' ')} failed in ${ws.dir}:\n${m.output.slice(-3000)}`);
  return m;
}

function expectAllRestored(m: Measured, n: number, what: string): void {
  const hits = cacheHits(m.output);
  if (hits?.hits !== n || hits.total !== n)
    throw new Error(`${what}: expected ${n}/${n} cache hits, got ${JSON.stringify(hits)}:\n${m.output.slice(-2000)}`);
}

const RUN = ['run-many', '-t', 'build-driver', '--output-style=static'];

export async function remoteRestore(n: number, runs: number): Promise<Restore> {
  const store = await mkdtemp(join(tmpdir(), 'kmatrix-bench-cache-'));
  const server = await startCacheServer(store);
  const { ws: a } = await syntheticWorkspace(n, MODULE_BYTES);
  const clones: Workspace[] = [];
  let bare: Awaited<ReturnType<typeof bareServer>> | undefined;
  try {
    process.stderr.write(`runner A builds ${n} targets and pushes them to ${server.url}…\n`);
    await nx(a, RUN, nxCacheEnv(server.url, WRITE_TOKEN));
    // The floor of a remote restore: the same entries served by a bare file server (no token,
    // no verification, no log), to the same Nx client.
    bare = await seedBareServer(store);
    const remote: number[] = [];
    const local: number[] = [];
    const fromBare: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Ours: a fresh clone (empty local cache) restores everything from the server.
      const b = await cloneWorkspace(a, 'kmatrix-bench-clone-');
      clones.push(b);
      await nx(b, ['show', 'projects']); // the project graph, computed once like A's
      const fromServer = await nx(b, RUN, nxCacheEnv(server.url, READ_TOKEN));
      expectAllRestored(fromServer, n, 'restore from the server');
      remote.push(fromServer.seconds);
      const c = await cloneWorkspace(a, 'kmatrix-bench-clone-bare-');
      clones.push(c);
      await nx(c, ['show', 'projects']);
      const bareRun = await nx(c, RUN, nxCacheEnv(bare.url, READ_TOKEN));
      expectAllRestored(bareRun, n, 'restore from the bare server');
      fromBare.push(bareRun.seconds);
      await c.remove();
      // Baseline: runner A, outputs deleted, restores the same from its local cache.
      await rm(join(a.dir, 'dist'), { recursive: true, force: true });
      const fromDisk = await nx(a, RUN);
      expectAllRestored(fromDisk, n, 'restore from the local cache');
      if (!existsSync(join(b.dir, 'dist/targets/kmx-echo/debian-bookworm/6.1.0-1-amd64/x86_64/kmx_echo.ko')))
        throw new Error('the clone has no restored module');
      local.push(fromDisk.seconds);
      await b.remove();
    }
    const storedBytes = server
      .accessLog()
      .filter((e) => e.method === 'PUT' && e.status === 200)
      .reduce((sum, e) => sum + Number(e.bytes ?? 0), 0);
    return {
      targets: n,
      remoteSeconds: median(remote),
      localSeconds: median(local),
      bareSeconds: median(fromBare),
      storedBytes,
    };
  } finally {
    await bare?.stop();
    await server.stop();
    await a.remove();
    for (const c of clones) await c.remove();
    await rm(store, { recursive: true, force: true });
  }
}

export interface Load {
  clients: number;
  requests: number;
  errors: number;
  ours: { seconds: number; p50: number; p99: number };
  baseline: { seconds: number; p50: number; p99: number };
}

/** A bare server holding copies of every entry our server stores (its file names: the URL's digits). */
async function seedBareServer(store: string): Promise<Awaited<ReturnType<typeof bareServer>>> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-bench-bare-'));
  const objects = join(store, 'objects/main');
  for (const f of await readdir(objects))
    if (/^\d+$/.test(f)) await copyFile(join(objects, f), join(dir, `/v1/cache/${f}`.replace(/\D/g, '')));
  return bareServer(dir);
}

/** The floor (bare-server.ts), started as a process of its own, as ours is. */
async function bareServer(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const child = execa(process.execPath, [join(repoRoot, 'test/bench/bare-server.ts'), dir], { reject: false });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim()));
    void child.then((r) => reject(new Error(`the bare server exited before it listened: ${r.stderr}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

export interface Plan {
  stored: { hash: string; body: Buffer }[];
  fresh: { hash: string; body: Buffer }[];
}

export function plan(objects: number, puts: number, bytes: number): Plan {
  const make = (i: number) => ({ hash: String(10_000_000 + i), body: randomBytes(bytes) });
  return {
    stored: Array.from({ length: objects }, (_, i) => make(i)),
    fresh: Array.from({ length: puts }, (_, i) => make(objects + i)),
  };
}

/** How a load run hammers a server. */
export interface Shape {
  clients: number;
  perClient: number;
  /** Size of every body */
  bytes: number;
  /** Objects stored before the run, which the GETs read */
  objects: number;
  /** Every tenth request a PUT of a new object (9 GET : 1 PUT); else GETs only */
  puts: boolean;
}

/** clients × perClient requests (9 GETs of stored objects to 1 PUT of a new one, or all GETs). Never throws: errors are returned. */
export async function hammer(
  url: string,
  token: string,
  p: Plan,
  shape: Pick<Shape, 'clients' | 'perClient' | 'puts'>,
): Promise<{ seconds: number; latencies: number[]; errors: string[] }> {
  const headers = { authorization: `Bearer ${token}` };
  const latencies: number[] = [];
  const errors: string[] = [];
  let nextPut = 0;
  const one = async (i: number) => {
    const put = shape.puts && i % 10 === 9 && nextPut < p.fresh.length;
    const obj = put ? p.fresh[nextPut++]! : p.stored[i % p.stored.length]!;
    const start = performance.now();
    try {
      const res = await fetch(
        `${url}/v1/cache/${obj.hash}`,
        put
          ? { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: obj.body }
          : { headers },
      );
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200)
        errors.push(`${put ? 'PUT' : 'GET'} ${obj.hash}: ${res.status} ${body.toString().slice(0, 200)}`);
      else if (!put && !body.equals(obj.body)) errors.push(`GET ${obj.hash}: wrong bytes`);
    } catch (error) {
      errors.push(`${put ? 'PUT' : 'GET'} ${obj.hash}: ${(error as Error).message}`);
    }
    latencies.push(performance.now() - start);
  };
  const start = performance.now();
  await Promise.all(
    Array.from({ length: shape.clients }, async (_, c) => {
      for (let k = 0; k < shape.perClient; k++) await one(c * shape.perClient + k);
    }),
  );
  return { seconds: (performance.now() - start) / 1000, latencies, errors };
}

type Side = { seconds: number; p50: number; p99: number };

/** One run of one side: a fresh server and store, seeded, then hammered. */
async function loadRun(side: 'ours' | 'baseline', shape: Shape): Promise<Side> {
  const dir = await mkdtemp(join(tmpdir(), `kmatrix-bench-load-${side}-`));
  const requests = shape.clients * shape.perClient;
  const p = plan(shape.objects, shape.puts ? Math.ceil(requests / 10) : 0, shape.bytes);
  const server = side === 'ours' ? await startCacheServer(dir) : await bareServer(dir);
  try {
    for (const o of p.stored) {
      const res = await fetch(`${server.url}/v1/cache/${o.hash}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${WRITE_TOKEN}` },
        body: o.body,
      });
      if (res.status !== 200)
        throw new Error(`seeding the ${side} server failed: PUT ${o.hash} → ${res.status} ${await res.text()}`);
    }
    const run = await hammer(server.url, WRITE_TOKEN, p, shape);
    if (run.errors.length > 0)
      throw new Error(`${run.errors.length} errors under load (${side}): ${run.errors.slice(0, 5).join('; ')}`);
    return { seconds: run.seconds, p50: percentile(run.latencies, 0.5), p99: percentile(run.latencies, 0.99) };
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The 9 GET : 1 PUT mix of runners sharing a cache: many small entries. */
export const MIXED: Shape = { clients: 200, perClient: 10, bytes: MODULE_BYTES, objects: 200, puts: true };
/** A burst of big restores: 500 concurrent GETs of 1 MiB entries. */
export const BIG_GETS: Shape = { clients: 500, perClient: 1, bytes: 2 ** 20, objects: 50, puts: false };

/** Both servers in processes of their own, the runs interleaved; each figure the median of `runs`. */
export async function loadTest(runs: number, shape: Shape): Promise<Load> {
  const sides: Record<'ours' | 'baseline', Side[]> = { ours: [], baseline: [] };
  for (let i = 0; i < runs; i++)
    for (const side of ['ours', 'baseline'] as const) sides[side].push(await loadRun(side, shape));
  const med = (xs: Side[]): Side => ({
    seconds: median(xs.map((x) => x.seconds)),
    p50: median(xs.map((x) => x.p50)),
    p99: median(xs.map((x) => x.p99)),
  });
  return {
    clients: shape.clients,
    requests: shape.clients * shape.perClient,
    errors: 0,
    ours: med(sides.ours),
    baseline: med(sides.baseline),
  };
}
