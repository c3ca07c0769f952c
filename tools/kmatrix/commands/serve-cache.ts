import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { KmatrixError } from '../core/errors.ts';
import { CacheServer, DEFAULT_MEMORY_BYTES } from '../cache/server.ts';
import { loadTokens } from '../cache/tokens.ts';
import { openStore } from '../cache/open-store.ts';
import { defineCommand, log } from './command.ts';

const about = `Serves Nx's self-hosted remote cache protocol (GET/PUT /v1/cache/{hash}) for the stock nx
client: point it here with
  NX_SELF_HOSTED_REMOTE_CACHE_SERVER=http://HOST:PORT
  NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN=<a read or write token>

Tokens never come from the command line. The server reads:
  KMATRIX_CACHE_READ_TOKEN   (or KMATRIX_CACHE_READ_TOKEN_FILE)   may GET   (PUT → 403)
  KMATRIX_CACHE_WRITE_TOKEN  (or KMATRIX_CACHE_WRITE_TOKEN_FILE)  may GET and PUT
and, with --tokens FILE, more tokens in namespaces: {"tokens": [{"name": "staging", "sha256":
"<sha256 of the token>", "access": "write", "namespace": "staging", "readFrom": ["main"]}]} — a
token that writes only to "staging" and reads "staging" then "main"; main's tokens never read
"staging". The file holds digests, not tokens.

One namespace per pull request: with KMATRIX_CACHE_NAMESPACE_KEY (or _FILE; 32+ characters) the
server also accepts namespace tokens, minted by whoever holds the key (the trusted part of CI) with
\`kmatrix cache token pr-1234\`. Such a token writes only "pr-1234" and reads it, then "main";
never another pull request's namespace.

Each namespace has its own byte budget: --max-bytes for main, --namespace-max-bytes for every
other (an upload larger than its namespace's budget is refused, 413). A PUT evicts only its own
namespace's least-recently-used objects, so no pull request can push main's entries out; objects
of namespaces other than main unused for --namespace-days (14) are removed, so closed pull
requests do not hold disk forever. Disk use is at most main's budget plus each live namespace's.
With --tls-cert and --tls-key the server speaks HTTPS; otherwise put it behind a TLS-terminating
proxy before it leaves the machine (tokens are bearer secrets).

Every body's SHA256 and size are recorded at PUT and checked before a GET serves it: hashed on its
first GET, again whenever its file changes (inode, size, mtime or ctime) and at least hourly. An
object that no longer matches is quarantined and answered as a miss (the task rebuilds and
replaces it). With a directory store, verified bodies up to 1 MiB are kept in memory (--memory)
and served from there while their file is unchanged. A PUT is published atomically and only if
the key is free (409 otherwise); an upload cut short stores nothing, and one the store has no
room for is answered 507. One JSON line per request goes to stdout (no tokens). SIGTERM/SIGINT
stop accepting and let uploads in flight finish, for up to 30 s. Headers must arrive within 30 s,
a connection idle for 60 s is closed (a stalled upload stores nothing) and a request may last 30
minutes. No request can stop the server: a malformed one is answered 4xx, a failure 500. Only an
entry's first 256 KiB are ever decompressed, to at most 16 MiB (to name its target).
`;

export function parseSize(text: string, what: string): number {
  const m = text.match(/^(\d+(?:\.\d+)?)([KMGT]?)i?B?$/i);
  if (!m)
    throw new KmatrixError(`${what}: "${text}" is not a size`, {
      stage: 'usage',
      remedy: 'write it like 500M, 50G or 1073741824',
    });
  const unit = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[
    m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ];
  return Math.floor(Number(m[1]) * unit);
}

function days(text: string): number {
  if (!/^\d+$/.test(text))
    throw new KmatrixError(`--namespace-days: "${text}" is not a whole number of days`, {
      stage: 'usage',
      remedy: 'e.g. --namespace-days 14, or 0 to keep objects until evicted',
    });
  return Number(text);
}

async function readTls(certFile?: string, keyFile?: string): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile)
    throw new KmatrixError('--tls-cert and --tls-key go together', {
      stage: 'usage',
      remedy: 'pass both, or neither to serve plain HTTP',
    });
  const read = (file: string, flag: string) =>
    readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new KmatrixError(`${flag}: cannot read ${file}: ${error.code}`, {
        stage: 'usage',
        remedy: 'check the path',
      });
    });
  const tls = { cert: await read(certFile, '--tls-cert'), key: await read(keyFile, '--tls-key') };
  try {
    createSecureContext(tls);
  } catch (error) {
    throw new KmatrixError(`--tls-cert/--tls-key: not a usable certificate and key (${(error as Error).message})`, {
      stage: 'usage',
      remedy: 'pass a PEM certificate chain and the PEM private key that belongs to it',
    });
  }
  return tls;
}

export const serveCacheCommand = defineCommand({
  name: 'serve-cache',
  summary: 'run the self-hosted Nx remote cache server',
  about,
  options: {
    store: {
      type: 'string',
      required: true,
      path: true,
      value: 'DIR|s3://B/P',
      help: `where objects live: a directory, or S3-compatible storage (endpoint from
        KMATRIX_S3_ENDPOINT or AWS_ENDPOINT_URL, credentials from AWS_* variables)`,
    },
    port: { type: 'string', default: '3300', value: 'N', help: 'the port (0: any free port; the URL is printed)' },
    host: { type: 'string', default: '127.0.0.1', value: 'ADDR', help: 'the address to listen on' },
    'max-bytes': {
      type: 'string',
      value: 'SIZE',
      help: "main's budget: evict its least-recently-used objects above this (e.g. 50G; default: no limit)",
    },
    'namespace-max-bytes': {
      type: 'string',
      value: 'SIZE',
      help: 'the budget of each other namespace (default: a tenth of --max-bytes)',
    },
    'namespace-days': {
      type: 'string',
      default: '14',
      value: 'N',
      help: "remove other namespaces' objects unused for N days (a closed pull request's; 0: never)",
    },
    'tls-cert': { type: 'string', path: true, value: 'FILE', help: 'serve HTTPS with this PEM certificate chain' },
    'tls-key': { type: 'string', path: true, value: 'FILE', help: 'and this PEM private key' },
    'max-body': { type: 'string', default: '2G', value: 'SIZE', help: 'largest accepted upload' },
    memory: {
      type: 'string',
      value: 'SIZE',
      help: `keep up to SIZE of verified entries (each at most 1 MiB) in memory, and as much again while
        they are read (default: ${DEFAULT_MEMORY_BYTES / 2 ** 20}M; 0: none; directory stores only)`,
    },
    tokens: { type: 'string', path: true, value: 'FILE', help: 'namespaced tokens (see above)' },
  },
  async run({ values }) {
    if (!/^\d+$/.test(values.port))
      throw new KmatrixError(`--port: "${values.port}" is not a port number`, {
        stage: 'usage',
        remedy: 'see `npx kmatrix serve-cache --help`',
      });
    const tokens = await loadTokens(process.env, values.tokens);
    const store = await openStore(values.store!); // required: checked before run
    const maxBytes = values['max-bytes'] ? parseSize(values['max-bytes'], '--max-bytes') : 0;
    const server = new CacheServer({
      store,
      tokens,
      maxBytes,
      namespaceMaxBytes: values['namespace-max-bytes']
        ? parseSize(values['namespace-max-bytes'], '--namespace-max-bytes')
        : Math.floor(maxBytes / 10),
      namespaceTtlMs: days(values['namespace-days']) * 86_400_000,
      tls: await readTls(values['tls-cert'], values['tls-key']),
      maxBody: parseSize(values['max-body'], '--max-body'),
      memoryBytes: values.memory === undefined ? undefined : parseSize(values.memory, '--memory'),
      log: (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`),
    });
    let objects: number;
    try {
      objects = await server.open();
    } catch (error) {
      throw new KmatrixError(
        `cannot open the cache store ${store.description}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).name}: ${(error as Error).message}`,
        {
          stage: 'cache',
          cause: error,
          remedy: values.store!.startsWith('s3://')
            ? 'check the bucket exists and KMATRIX_S3_ENDPOINT / AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION'
            : 'check the directory is writable by this user',
        },
      );
    }
    let url: string;
    try {
      url = await server.listen(Number(values.port), values.host);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new KmatrixError(`cannot serve on ${values.host}:${values.port}: ${code ?? (error as Error).message}`, {
        stage: 'cache',
        cause: error,
        remedy:
          code === 'EADDRINUSE'
            ? 'another process uses that port: pick another with --port'
            : 'check --host is an address of this machine',
      });
    }
    log(
      `kmatrix cache server on ${url} (store: ${store.description}, ${objects} object${objects === 1 ? '' : 's'}, ${tokens.size} token${tokens.size === 1 ? '' : 's'})`,
    );
    await new Promise<void>((done) => {
      const stop = (signal: string) => {
        log(`${signal}: finishing requests in flight, then stopping`);
        void server.close().then(done);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
});
