/**
 * The load test's floor, in a process of its own like our server: a bare HTTP server storing
 * bodies as files under argv[2], no auth, no verification. Prints its URL on the first line.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const dir = process.argv[2]!;
const server = createServer((req, res) => {
  const file = join(dir, (req.url ?? '').replace(/\D/g, ''));
  if (req.method === 'GET') {
    readFile(file).then(
      (b) => res.writeHead(200, { 'content-length': b.length }).end(b),
      () => res.writeHead(404).end(),
    );
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => void writeFile(file, Buffer.concat(chunks)).then(() => res.writeHead(200).end()));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
