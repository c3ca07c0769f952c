import { resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { arch, identifier, kernelRelease } from '../model/names.ts';
import { defaultPublishStore, openArtifactStore } from '../publish/open-artifact-store.ts';
import { DEFAULT_LIMITS, RequestService } from '../fleet/request.ts';
import { sharedToken } from '../cache/tokens.ts';
import { requestServer } from '../fleet/request-server.ts';
import { defineCommand, log } from './command.ts';

function kernelArgs(positionals: string[]) {
  if (positionals.length !== 3)
    throw new KmatrixError('expected DISTRO KERNELRELEASE ARCH', {
      stage: 'usage',
      remedy: 'e.g. npx kmatrix request debian-bookworm 6.1.0-47-amd64 x86_64',
    });
  const [distro, kernelrelease, machine] = positionals as [string, string, string];
  const checks = [identifier.safeParse(distro), kernelRelease.safeParse(kernelrelease), arch.safeParse(machine)];
  const bad = checks.findIndex((c) => !c.success);
  if (bad !== -1) {
    throw new KmatrixError(
      `${['DISTRO', 'KERNELRELEASE', 'ARCH'][bad]} "${positionals[bad]}": ${checks[bad]!.error!.issues[0]!.message}`,
      { stage: 'usage', remedy: 'e.g. npx kmatrix request debian-bookworm 6.1.0-47-amd64 x86_64' },
    );
  }
  return { distro, kernelrelease, arch: machine as 'x86_64' | 'aarch64' };
}

const requestAbout = `
The driver for a kernel that a node runs, now: e.g.
  npx kmatrix request debian-bookworm "$(uname -r)" "$(uname -m)"

1. the published index of the artifact store answers, if the kernel's modules are published;
2. else the kernel's targets are generated in this checkout (\`kmatrix gen --only\`: the policy
   decides, its \`latest\` trimming aside — the kernel is in use), crawling the distro first if
   the kernel lists do not know the kernel yet (a kernel released today);
3. Nx runs their build-driver tasks — restored from the remote cache when any runner built them,
   built otherwise — and they are published (with provenance, signed when signing is set up),
   so the next request is a lookup.

Concurrent requests for one kernel share one build (\`kmatrix serve-requests\` in one process,
a lock across processes). Prints each module's URL and SHA256 (--json: the whole answer).
Exit 0 answered, 1 the matrix does not cover the kernel or its build failed.
`;

const serveAbout = `
\`kmatrix request\` as an HTTP service, run in a checkout of the repository (it generates,
builds through Nx with the remote cache, and publishes there):

  GET /v1/modules/<distro>/<kernelrelease>/<arch>   200 JSON {distro, kernelrelease, arch, source,
        modules: [{target, driver, file, sha256, size, key, url, download, signed?, provenance}]}
        (download: this service's /v1/artifacts/<key> for the file);
        404 the support matrix does not cover the kernel (with why); 400 a malformed name;
        502 its build failed. It answers when the build is done; concurrent calls share it.
  GET /v1/artifacts/<key>                           a published file (the "key" of a module)
  GET /healthz

Every path but /healthz needs the callers' bearer token, from KMATRIX_REQUEST_TOKEN (or
KMATRIX_REQUEST_TOKEN_FILE; never argv): "Authorization: Bearer <token>"; 401 without it. The
service refuses to start without one.

Bounded by construction: only the policy's distros (404 for any other, before any work); at most
--max-builds kernels generated and built at once and --max-queue waiting, past which 429 with
Retry-After; one crawl per distro and arch at a time, and none again for 10 minutes (a failed one
answers 503 with Retry-After meanwhile); a kernel found not covered is remembered as such for 10
minutes. Failures are answered without their detail (mirror URLs, paths): that goes to the log.

One JSON line per request on stdout. SIGTERM/SIGINT stop it. Plain HTTP: front it with a
TLS-terminating proxy when it leaves the machine.
`;

const store = () =>
  ({
    type: 'string',
    default: defaultPublishStore(),
    path: true,
    value: 'LOC',
    help: 'artifact store (default: $KMATRIX_PUBLISH_STORE, else dist/published)',
  }) as const;

export const requestCommand = defineCommand({
  name: 'request',
  summary: 'the modules for one kernel now: published, from the cache, or built on demand',
  args: 'DISTRO KERNELRELEASE ARCH',
  about: requestAbout,
  options: {
    store: store(),
    json: { type: 'boolean', default: false, help: 'print the answer as JSON' },
  },
  async run({ values, positionals }) {
    const key = kernelArgs(positionals);
    const store = await openArtifactStore(values.store);
    const answer = await new RequestService(resolve('.'), store, log).request(key);
    if (values.json) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    else {
      for (const m of answer.modules)
        process.stdout.write(
          `${m.target}  ${m.file}  sha256 ${m.sha256}\n  ${m.url}${m.signed ? `\n  ${m.signed.url} (signed)` : ''}\n`,
        );
      process.stdout.write(
        `${answer.modules.length} module${answer.modules.length === 1 ? '' : 's'} for ${key.distro} ${key.kernelrelease} ${key.arch} (${answer.source})\n`,
      );
    }
    return 0;
  },
});

export const serveRequestsCommand = defineCommand({
  name: 'serve-requests',
  summary: 'the on-demand request service over HTTP (GET /v1/modules/<distro>/<release>/<arch>)',
  about: serveAbout,
  options: {
    port: { type: 'string', default: '3400', value: 'N', help: 'the port (0: any free port)' },
    host: { type: 'string', default: '127.0.0.1', value: 'ADDR', help: 'the address to listen on' },
    store: store(),
    'max-builds': {
      type: 'string',
      default: String(DEFAULT_LIMITS.builds),
      value: 'N',
      help: 'kernels generated and built at once',
    },
    'max-queue': {
      type: 'string',
      default: String(DEFAULT_LIMITS.queue),
      value: 'N',
      help: 'kernels waiting for a build; more get 429',
    },
  },
  async run({ values }) {
    const count = (flag: string, text: string, min: number) => {
      if (!/^\d+$/.test(text) || Number(text) < min)
        throw new KmatrixError(`--${flag}: "${text}" is not a whole number ≥ ${min}`, {
          stage: 'usage',
          remedy: 'see `npx kmatrix serve-requests --help`',
        });
      return Number(text);
    };
    const port = count('port', values.port, 0);
    const limits = {
      ...DEFAULT_LIMITS,
      builds: count('max-builds', values['max-builds'], 1),
      queue: count('max-queue', values['max-queue'], 0),
    };
    const tokens = await sharedToken(process.env, 'KMATRIX_REQUEST_TOKEN');
    if (!tokens)
      throw new KmatrixError('no request token configured: anyone could start builds', {
        stage: 'request',
        remedy: 'set KMATRIX_REQUEST_TOKEN (or KMATRIX_REQUEST_TOKEN_FILE), e.g. to `openssl rand -hex 32`',
      });
    const store = await openArtifactStore(values.store);
    const service = new RequestService(resolve('.'), store, log, limits);
    const server = requestServer(service, store, tokens, (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`));
    await new Promise<void>((ok, fail) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        fail(
          new KmatrixError(`cannot serve on ${values.host}:${values.port}: ${error.code ?? error.message}`, {
            stage: 'request',
            remedy:
              error.code === 'EADDRINUSE' ? 'another process uses that port: pick another with --port' : 'check --host',
          }),
        ),
      );
      server.listen(port, values.host, () => ok());
    });
    const address = server.address() as { port: number };
    log(`kmatrix request service on http://${values.host}:${address.port} (store: ${store.description})`);
    await new Promise<void>((done) => {
      const stop = (signal: string) => {
        log(`${signal}: stopping`);
        server.close(() => done());
        server.closeIdleConnections();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
});
