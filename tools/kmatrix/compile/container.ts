/**
 * Runs one container through dockerode and always checks its exit status (driverkit's runner
 * famously does not). Output is streamed line by line as it arrives.
 */
import type Docker from 'dockerode';
import type { ContainerCreateOptions } from 'dockerode';
import { PassThrough } from 'node:stream';

export interface RunOptions {
  /** Kill the container after this long. */
  timeoutMs?: number | undefined;
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

/** Creates the container exactly as configured (recipe/container.ts), runs it and streams its output. */
export async function runInContainer(
  docker: Docker,
  options: ContainerCreateOptions,
  spec: RunOptions,
): Promise<RunResult> {
  const container = await docker.createContainer(options);
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
