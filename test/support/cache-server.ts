/** The real `kmatrix serve-cache` process on 127.0.0.1, as CI would run it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './workspace.ts';

export const READ_TOKEN = 'read-token-0123456789abcdef';
export const WRITE_TOKEN = 'write-token-fedcba9876543210';

export interface RunningCache {
  url: string;
  child: ChildProcess;
  /** stdout (the JSON access log) and stderr so far */
  output(): string;
  accessLog(): Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startCacheServer(
  store: string,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<RunningCache> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'tools/kmatrix/cli.ts'), 'serve-cache', '--store', store, '--port', '0', ...extraArgs],
    {
      env: { ...process.env, KMATRIX_CACHE_READ_TOKEN: READ_TOKEN, KMATRIX_CACHE_WRITE_TOKEN: WRITE_TOKEN, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cache server did not start:\n${out}`)), 20_000);
    const check = () => {
      const m = out.match(/kmatrix cache server on (https?:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => reject(new Error(`cache server exited ${code}:\n${out}`)));
  });
  return {
    url,
    child,
    output: () => out,
    accessLog: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The environment that points the stock nx client at a server. */
export function nxCacheEnv(url: string, token: string): NodeJS.ProcessEnv {
  return { NX_SELF_HOSTED_REMOTE_CACHE_SERVER: url, NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: token };
}
