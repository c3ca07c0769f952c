/** `kmatrix serve-requests` as a real process in a workspace, for tests that ask it for modules. */
import { join } from 'node:path';
import { execa } from 'execa';
import type { Workspace } from './workspace.ts';

export interface RunningService {
  /** http://127.0.0.1:<port> */
  base: string;
  /** Everything the service printed so far. */
  log(): string;
  /** SIGTERM, resolved when the process has exited. */
  stop(): Promise<void>;
}

/** Starts the service with `args` and `env` (KMATRIX_REQUEST_TOKEN among them) and waits for its address. */
export async function startRequestService(
  ws: Workspace,
  args: string[],
  env: Record<string, string>,
): Promise<RunningService> {
  const service = execa(process.execPath, [join(ws.dir, 'tools/kmatrix/cli.ts'), 'serve-requests', ...args], {
    cwd: ws.dir,
    env: { ...ws.env, ...env },
    extendEnv: false,
    all: true,
    reject: false,
  });
  let log = '';
  service.all!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const base = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no service start:\n${log}`)), 30_000);
    service.all!.on('data', () => {
      const m = log.match(/request service on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]!);
      }
    });
  });
  return {
    base,
    log: () => log,
    stop: async () => {
      service.kill('SIGTERM');
      await service;
    },
  };
}
