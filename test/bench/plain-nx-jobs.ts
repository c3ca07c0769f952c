/**
 * The cold-build figures' floor: plain Nx running the shell loop's own jobs, one project per job
 * whose target is `nx:run-commands` (the cheapest way plain Nx runs a shell command: in Nx's own
 * process, no plugin, no executor process), as many at a time as the loop runs them. The jobs are
 * the loop's, byte for byte, so what this side costs over the loop is Nx's alone: its start-up,
 * project graph, task hashing, scheduling and cache writes — the least any build tool on Nx pays
 * on top of the same containers. The tasks are cacheable but declare no outputs, so Nx stores
 * their terminal output only (ours also stores each target's few-KB output folder).
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheHits, repoRoot } from '../support/workspace.ts';
import { coldNxRun } from './cold-run.ts';

const TARGET = 'job';

export interface PlainNxJobs {
  /** One cold `nx run-many` of every job (cold-run.ts); its seconds. */
  run(parallel: number): Promise<number>;
  remove(): Promise<void>;
}

/** The projects, one per command line of the loop (`sh '<job file>'`). */
async function writeProjects(dir: string, commands: readonly string[]): Promise<void> {
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'plain-nx-jobs', private: true }));
  await writeFile(join(dir, 'nx.json'), JSON.stringify({ neverConnectToCloud: true }));
  for (const [i, command] of commands.entries()) {
    const root = join('jobs', String(i));
    await mkdir(join(dir, root), { recursive: true });
    const target = { executor: 'nx:run-commands', cache: true, inputs: [], options: { command } };
    await writeFile(
      join(dir, root, 'project.json'),
      JSON.stringify({ name: `job-${i}`, root, targets: { [TARGET]: target } }),
    );
  }
}

/** A plain Nx workspace with one project per command; env is the one our side runs with (daemon, TUI). */
export async function plainNxJobs(commands: readonly string[], env: NodeJS.ProcessEnv): Promise<PlainNxJobs> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-bench-plain-nx-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  // ws.env points Nx's workspace data at our side's workspace: this one keeps its own.
  const ownEnv = { ...env, NX_WORKSPACE_DATA_DIRECTORY: join(dir, '.nx', 'workspace-data') };
  try {
    await writeProjects(dir, commands);
    // Untimed, as on our side (its prepare runs `nx show projects`): no timed run computes the graph cold.
    await coldNxRun(dir, ownEnv, ['show', 'projects']);
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    async run(parallel) {
      const args = ['run-many', '-t', TARGET, `--parallel=${parallel}`, '--output-style=static'];
      const m = await coldNxRun(dir, ownEnv, args);
      if (cacheHits(m.output)?.total !== commands.length)
        throw new Error(`plain nx did not run each job once:\n${m.output.slice(-3000)}`);
      return m.seconds;
    },
    remove,
  };
}
