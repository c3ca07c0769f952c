/**
 * The on-demand service over HTTP, for nodes (an init container, a boot hook) to call:
 *   GET /v1/modules/<distro>/<kernelrelease>/<arch>   the answer of `kmatrix request` (JSON); it
 *       waits while a build runs, and concurrent calls for one kernel share that build
 *   GET /v1/artifacts/<key>                           a published file (module, provenance)
 *   GET /healthz
 * Parameters are validated with the same schemas as target names (400 otherwise), so nothing a
 * caller sends reaches a path or a command line unchecked.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import type { KmatrixError } from '../core/errors.ts';
import { arch, identifier, kernelRelease } from '../model/names.ts';
import type { ArtifactStore } from '../publish/artifact-store.ts';
import { RequestError, type RequestService } from './request.ts';

const kernelKey = z.object({ distro: identifier, kernelrelease: kernelRelease, arch });

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function requestServer(
  service: RequestService,
  store: ArtifactStore,
  log: (entry: Record<string, unknown>) => void,
): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    // Matched before decoding, so an encoded "/" can never add a path segment.
    const path = (req.url ?? '/').split('?')[0]!;
    res.on('finish', () => log({ method: req.method, path, status: res.statusCode, ms: Date.now() - started }));
    void (async () => {
      if (req.method !== 'GET') return send(res, 405, { error: 'only GET' });
      if (path === '/healthz') return send(res, 200, { ok: true });
      const modules = path.match(/^\/v1\/modules\/([^/]+)\/([^/]+)\/([^/]+)$/);
      if (modules) {
        const [distro, kernelrelease, machine] = modules.slice(1).map((p) => decodeURIComponent(p));
        const parsed = kernelKey.safeParse({ distro, kernelrelease, arch: machine });
        if (!parsed.success) {
          return send(res, 400, {
            error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
            remedy:
              'GET /v1/modules/<distro>/<kernelrelease>/<arch>, e.g. /v1/modules/debian-bookworm/6.1.0-47-amd64/x86_64',
          });
        }
        try {
          const answer = await service.request(parsed.data);
          // Where this service serves each file, for nodes that cannot reach the store itself.
          const download = (key: string) => `/v1/artifacts/${key.split('/').map(encodeURIComponent).join('/')}`;
          return send(res, 200, {
            ...answer,
            modules: answer.modules.map((m) => ({
              ...m,
              download: download(m.key),
              ...(m.signed ? { signed: { ...m.signed, download: download(m.signed.key) } } : {}),
            })),
          });
        } catch (error) {
          const status = error instanceof RequestError ? error.status : 500;
          const e = error as KmatrixError;
          return send(res, status, {
            error: e.message,
            ...(e.problems?.length ? { details: e.problems } : {}),
            ...(e.remedy ? { remedy: e.remedy } : {}),
          });
        }
      }
      const artifact = path.match(/^\/v1\/artifacts\/(.+)$/);
      if (artifact) {
        const key = artifact[1]!
          .split('/')
          .map((p) => decodeURIComponent(p))
          .join('/');
        if (key.split('/').some((p) => p === '..' || p === '' || p.startsWith('.')))
          return send(res, 400, { error: 'invalid key' });
        const body = await store.get(key).catch(() => undefined);
        if (!body) return send(res, 404, { error: `no artifact ${key}` });
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        return res.end(body);
      }
      return send(res, 404, { error: 'not found', remedy: 'GET /v1/modules/<distro>/<kernelrelease>/<arch>' });
    })().catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { error: (error as Error).message });
      else res.destroy();
    });
  });
}
