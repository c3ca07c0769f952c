/**
 * Runs one command in a toolchain container through dockerode and always checks its exit status
 * (driverkit's runner famously does not). Output is streamed line by line as it arrives.
 */
import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { type SandboxLimits, sandboxHostConfig, userSpec } from './sandbox.ts';

export interface Bind {
  host: string;
  container: string;
  readOnly: boolean;
}

export interface RunSpec {
  image: string;
  cmd: string[];
  env: Record<string, string>;
  workdir: string;
  binds: Bind[];
  /** The sandbox's limits (sandbox.ts); its user is always the sandbox user. */
  limits: SandboxLimits;
  /** Extra labels, so a container can be found again (e.g. by the output folder it builds). */
  labels?: Record<string, string>;
  /** Kill the container after this long. */
  timeoutMs?: number;
  onLine: (line: string) => void;
}

export interface RunResult {
  exitCode: number;
  timedOut: boolean;
}

/** A "line" with no newline for this long is passed on in pieces, so no output grows unbounded. */
const MAX_LINE = 64 * 1024;

function lineSplitter(onLine: (line: string) => void): PassThrough {
  const stream = new PassThrough();
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) onLine(l);
    while (rest.length > MAX_LINE) {
      onLine(rest.slice(0, MAX_LINE));
      rest = rest.slice(MAX_LINE);
    }
  });
  stream.on('end', () => rest && onLine(rest));
  return stream;
}

/**
 * A dead man's switch around the command. The executor holds the container's stdin open through
 * its attach connection; if the executor dies in any way (Ctrl-C on nx, SIGKILL, a crashed
 * runner) the kernel closes that connection, Docker closes stdin (StdinOnce), `cat` returns and
 * everything in the container is killed — no kill request from a dying process needed.
 * The command itself gets /dev/null as stdin and its arguments are passed as "$@", never
 * interpolated into the script.
 */
const WATCHDOG = [
  'exec 3<&0',
  '"$@" </dev/null 3<&- & child=$!',
  '{ cat <&3 >/dev/null; echo "kmatrix: the build\'s client went away; stopping the build" >&2; kill -KILL -1; } &',
  'exec 3<&-',
  'wait "$child"',
].join('\n');

export async function runInContainer(docker: Docker, spec: RunSpec): Promise<RunResult> {
  const container = await docker.createContainer({
    Image: spec.image,
    Cmd: ['/bin/sh', '-c', WATCHDOG, 'kmatrix-watchdog', ...spec.cmd],
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    WorkingDir: spec.workdir,
    User: userSpec(),
    Tty: false,
    AttachStdout: true,
    AttachStderr: true,
    Labels: { 'kmatrix.role': 'build', ...spec.labels },
    HostConfig: {
      // Docker removes it when it exits, even if this process is killed first (Ctrl-C on nx
      // ends the executor before a finally block could).
      AutoRemove: true,
      ...sandboxHostConfig(spec.limits),
      Binds: spec.binds.map((b) => `${b.host}:${b.container}:${b.readOnly ? 'ro' : 'rw'}`),
    },
  });
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const stopOnSignal = () => void container.kill().catch(() => {});
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    const stream = (await container.attach({
      stream: true,
      stdin: true,
      stdout: true,
      stderr: true,
      hijack: true,
    })) as NodeJS.ReadWriteStream;
    const out = lineSplitter(spec.onLine);
    const err = lineSplitter(spec.onLine);
    container.modem.demuxStream(stream, out, err);
    const ended = new Promise<void>((resolve) => stream.on('end', resolve));
    // Wait before starting: with AutoRemove a quick command could be gone before a later wait.
    const exited = container.wait({ condition: 'next-exit' }) as Promise<{ StatusCode: number }>;
    await container.start();
    if (spec.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true;
        void container.kill().catch(() => {});
      }, spec.timeoutMs);
    }
    const { StatusCode } = await exited;
    await ended;
    out.end();
    err.end();
    (stream as unknown as { destroy?: () => void }).destroy?.();
    return { exitCode: StatusCode, timedOut };
  } finally {
    if (timer) clearTimeout(timer);
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    await container.remove({ force: true }).catch(() => {});
  }
}
