/**
 * Wall time and peak resident memory of a command *and every process it starts* (Nx runs its
 * plugins in worker processes), sampled from /proc every 50 ms.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const PAGE = 4096;

function processTable(): Map<number, { ppid: number; rss: number }> {
  const out = new Map<number, { ppid: number; rss: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(name), { ppid: Number(fields[1]), rss: Number(fields[21]) * PAGE });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function treeRss(root: number): number {
  const table = processTable();
  let total = 0;
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    total += table.get(pid)?.rss ?? 0;
    for (const [child, p] of table) if (p.ppid === pid) todo.push(child);
  }
  return total;
}

export interface Measured {
  seconds: number;
  peakBytes: number;
  output: string;
  exitCode: number;
}

export async function measure(
  cmd: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<Measured> {
  // Output goes to a file, not a pipe: Nx exits with process.exit(), which drops whatever a pipe
  // had not taken yet (its closing summary, at 1,000 projects).
  const log = join(await mkdtemp(join(tmpdir(), 'kmatrix-bench-out-')), 'output');
  const fd = openSync(log, 'w');
  const start = process.hrtime.bigint();
  const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
  const exited = new Promise<number>((done) => child.on('close', (code) => done(code ?? -1)));
  let peak = 0;
  const timer = setInterval(() => {
    if (child.pid) peak = Math.max(peak, treeRss(child.pid));
  }, 50);
  const exitCode = await exited;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  clearInterval(timer);
  closeSync(fd);
  const output = readFileSync(log, 'utf8');
  rmSync(dirname(log), { recursive: true, force: true });
  return { seconds, peakBytes: peak, output, exitCode };
}
