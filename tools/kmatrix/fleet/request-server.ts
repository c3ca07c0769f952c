/**
 * The on-demand service over HTTP, for nodes (an init container, a boot hook) to call:
 *   GET /v1/modules/<distro>/<kernelrelease>/<arch>   the answer of `kmatrix request` (JSON); it
 *       waits while a build runs, and concurrent calls for one kernel share that build
 *   GET /v1/artifacts/<key>                           a published file (module, provenance)
 *   GET /healthz
 * Parameters are validated with the same schemas as target names (400 otherwise), so nothing a
 * caller sends reaches a path or a command line unchecked. Everything but /healthz needs the
 * service's bearer token; an error the caller did not cause is answered without its detail.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import type { TokenRing } from '../cache/tokens.ts';
import { arch, identifier, kernelRelease } from '../model/names.ts';
import type { ArtifactStore } from '../publish/artifact-store.ts';
import { RequestError, type RequestService } from './request.ts';

const kernelKey = z.object({ distro: identifier, kernelrelease: kernelRelease, arch });

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Path segments decoded, or undefined for a malformed escape (answered 400, not 500). */
function decoded(parts: string[]): string[] | undefined {
  try {
    return parts.map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
}

const BAD_ESCAPE = { error: 'malformed percent-escape in the path' };

export function requestServer(
  service: RequestService,
  store: ArtifactStore,
  tokens: TokenRing,
  log: (entry: Record<string, unknown>) => void,
): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    // Matched before decoding, so an encoded "/" can never add a path segment.
    const path = (req.url ?? '/').split('?')[0]!;
    res.on('finish', () =>
      log({ method: req.method, path: path.slice(0, 200), status: res.statusCode, ms: Date.now() - started }),
    );
    void (async () => {
      if (req.method !== 'GET') return send(res, 405, { error: 'only GET' }, { allow: 'GET' });
      if (path === '/healthz') return send(res, 200, { ok: true });
      if (!tokens.identify(req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1]))
        return send(res, 401, { error: 'missing or unknown token' }, { 'www-authenticate': 'Bearer' });
      const modules = path.match(/^\/v1\/modules\/([^/]+)\/([^/]+)\/([^/]+)$/);
      if (modules) {
        const parts = decoded(modules.slice(1));
        if (!parts) return send(res, 400, BAD_ESCAPE);
        const [distro, kernelrelease, machine] = parts;
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
          if (!(error instanceof RequestError)) throw error;
          const retry: Record<string, string> =
            error.retryAfter === undefined ? {} : { 'retry-after': String(error.retryAfter) };
          return send(
            res,
            error.status,
            {
              error: error.message,
              ...(error.problems.length ? { details: error.problems } : {}),
              ...(error.remedy ? { remedy: error.remedy } : {}),
            },
            retry,
          );
        }
      }
      const artifact = path.match(/^\/v1\/artifacts\/(.+)$/);
      if (artifact) {
        const parts = decoded(artifact[1]!.split('/'));
        if (!parts) return send(res, 400, BAD_ESCAPE);
        const key = parts.join('/');
        if (key.split('/').some((p) => p === '..' || p === '' || p.startsWith('.')))
          return send(res, 400, { error: 'invalid key' });
        const body = await store.get(key).catch(() => undefined);
        if (!body) return send(res, 404, { error: `no artifact ${key}` });
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        return res.end(body);
      }
      return send(res, 404, { error: 'not found', remedy: 'GET /v1/modules/<distro>/<kernelrelease>/<arch>' });
    })().catch((error: unknown) => {
      // Anything else is ours, and its message may name internal paths: logged, not answered.
      log({ level: 'error', path: path.slice(0, 200), message: (error as Error)?.message ?? String(error) });
      if (!res.headersSent) send(res, 500, { error: 'internal error; the service log has the detail' });
      else res.destroy();
    });
  });
}
