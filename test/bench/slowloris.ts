/**
 * The cache server under a slowloris attack: hundreds of connections that send their headers a
 * byte at a time, and uploads that stall after their first bytes (a leaked pull-request token is
 * enough for those), while 200 normal clients (9 GET : 1 PUT) use it. The baseline is the same
 * 200 clients against the same server with no attack, in interleaved rounds: normal clients must
 * see no error, and the medians of their p99 latencies are compared.
 */
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCacheServer, WRITE_TOKEN } from '../support/cache-server.ts';
import { hammer, plan } from './remote-cache.ts';
import { median, percentile } from './stats.ts';

type Run = Awaited<ReturnType<typeof hammer>>;

export interface Slowloris {
  clients: number;
  requests: number;
  attackers: number;
  errors: number;
  attacked: { seconds: number; p99: number };
  calm: { seconds: number; p99: number };
}

/** Keeps `count` slow connections open against `url` until stopped, reopening any the server closes. */
function attack(url: string, count: number): () => void {
  const { hostname, port } = new URL(url);
  const sockets = new Set<Socket>();
  let stopped = false;
  const open = (i: number) => {
    if (stopped) return;
    const socket = connect(Number(port), hostname, () => {
      // Half send headers forever; half start an upload and stall.
      socket.write(
        i % 2 === 0
          ? 'GET /v1/cache/1 HTTP/1.1\r\nHost: x\r\n'
          : `PUT /v1/cache/${9_000_000 + i} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITE_TOKEN}\r\nContent-Length: 1048576\r\n\r\nx`,
      );
    });
    sockets.add(socket);
    const drip = setInterval(() => socket.write(i % 2 === 0 ? 'X-a: b\r\n' : 'x'), 5_000);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(drip);
      sockets.delete(socket);
      setTimeout(() => open(i), 100);
    });
  };
  for (let i = 0; i < count; i++) open(i);
  return () => {
    stopped = true;
    for (const s of sockets) s.destroy();
  };
}

export async function slowlorisBench(clients = 200, perClient = 10, attackers = 500): Promise<Slowloris> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-bench-slowloris-'));
  const server = await startCacheServer(dir);
  try {
    const p = plan(200, clients * perClient, 64 * 1024);
    for (const o of p.stored) {
      const res = await fetch(`${server.url}/v1/cache/${o.hash}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${WRITE_TOKEN}` },
        body: o.body,
      });
      if (res.status !== 200) throw new Error(`seeding failed: PUT ${o.hash} → ${res.status}`);
    }
    // Interleaved rounds (calm, attacked, …), so warm-up and drift fall on both sides alike.
    const rounds = 3;
    const slice = Math.floor(p.fresh.length / (2 * rounds));
    const runs: { calm: Run[]; attacked: Run[] } = { calm: [], attacked: [] };
    for (let r = 0; r < 2 * rounds; r++) {
      const attacked = r % 2 === 1;
      const stop = attacked ? attack(server.url, attackers) : () => {};
      if (attacked) await new Promise((done) => setTimeout(done, 2_000)); // the attack is in place
      const fresh = p.fresh.slice(r * slice, (r + 1) * slice);
      runs[attacked ? 'attacked' : 'calm'].push(
        await hammer(server.url, WRITE_TOKEN, { stored: p.stored, fresh }, { clients, perClient, puts: true }),
      );
      stop();
    }
    const errors = [...runs.calm, ...runs.attacked].flatMap((x) => x.errors);
    if (errors.length > 0)
      throw new Error(`${errors.length} errors for normal clients: ${errors.slice(0, 5).join('; ')}`);
    const summary = (xs: Run[]) => ({
      seconds: median(xs.map((x) => x.seconds)),
      p99: median(xs.map((x) => percentile(x.latencies, 0.99))),
    });
    return {
      clients,
      requests: clients * perClient,
      attackers,
      errors: errors.length,
      calm: summary(runs.calm),
      attacked: summary(runs.attacked),
    };
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
