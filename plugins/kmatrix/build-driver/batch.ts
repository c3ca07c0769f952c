/**
 * `nx run-many -t build-driver --batch`: every build of the run in one process instead of one
 * process per target. Nx starts a process per task for a custom executor, and that process
 * (Node, Nx's runner, dockerode, zod, our code) costs ~1 s of CPU — a third of a small driver's
 * build on a 2-core runner (`npm run bench`, build overhead). The trade-off, which is Nx's: a
 * batch's results are cached when the whole batch ends, so an interrupted batch caches nothing.
 *
 * Builds run KMATRIX_PARALLEL at a time (default: the number of cores); each result is reported
 * to Nx as soon as it is known, with that target's own output.
 */
import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import { availableParallelism } from 'node:os';
import { runBuildTask } from './task.ts';
import { cpuShare } from '../../../tools/kmatrix/compile/execute.ts';
import { inParallel } from '../../../tools/kmatrix/core/pool.ts';

interface Done {
  task: string;
  result: { success: boolean; terminalOutput: string; startTime: number; endTime: number };
}

export function batchParallelism(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.KMATRIX_PARALLEL;
  if (raw === undefined || raw === '') return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(
      `KMATRIX_PARALLEL must be a whole number ≥ 1, not "${raw}" — set it to how many builds may run at once, or unset it to use every core`,
    );
  return n;
}

export default async function* buildDriverBatch(
  taskGraph: TaskGraph,
  _inputs: Record<string, unknown>,
  _overrides: unknown,
  context: ExecutorContext,
): AsyncGenerator<Done> {
  const tasks = Object.values(taskGraph.tasks);
  const parallel = Math.min(batchParallelism(), tasks.length);
  // Each running build registers its own Ctrl-C handler (compile/container.ts).
  process.setMaxListeners(Math.max(process.getMaxListeners(), parallel * 2 + 10));
  console.log(`kmatrix: ${tasks.length} builds in one process, ${parallel} at a time (KMATRIX_PARALLEL)`);

  const finished: Done[] = [];
  let wake: (() => void) | undefined;
  const all = inParallel(
    tasks,
    async (task) => {
      const project = context.projectsConfigurations.projects[task.target.project]!;
      const lines: string[] = [];
      const startTime = Date.now();
      const say = (text: string) => {
        lines.push(text);
        for (const l of text.split('\n')) process.stdout.write(`[${task.target.project}] ${l}\n`);
      };
      const success = await runBuildTask(context.root, project.name!, { log: say, error: say }, cpuShare(parallel));
      finished.push({
        task: task.id,
        result: { success, terminalOutput: `${lines.join('\n')}\n`, startTime, endTime: Date.now() },
      });
      wake?.();
    },
    parallel,
  );
  let reported = 0;
  while (reported < tasks.length) {
    if (finished.length === reported) await new Promise<void>((resolve) => (wake = resolve));
    while (reported < finished.length) yield finished[reported++]!;
  }
  await all;
}
