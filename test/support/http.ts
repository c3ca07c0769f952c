/** A real HTTP server on 127.0.0.1 for tests that need a misbehaving archive. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  url: string;
  hits: Map<string, number>;
  close(): Promise<void>;
}

export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, hit: number) => void,
): Promise<TestServer> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const n = (hits.get(req.url!) ?? 0) + 1;
    hits.set(req.url!, n);
    handler(req, res, n);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves the files under `root` read-only (GET and HEAD), as a plain mirror would. */
export async function serveDirectory(root: string): Promise<TestServer> {
  const { createReadStream } = await import('node:fs');
  const { stat } = await import('node:fs/promises');
  const { join, normalize } = await import('node:path');
  return startServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    if (path.includes('..')) return res.writeHead(400).end();
    const file = join(root, path);
    stat(file).then(
      (st) => {
        if (!st.isFile()) return res.writeHead(404).end();
        res.writeHead(200, { 'content-length': st.size });
        if (req.method === 'HEAD') return res.end();
        createReadStream(file).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
}

/** A port nothing on 127.0.0.1 listens on right now (for servers that must be told their port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
