/**
 * `nx run-many -t build-driver --batch`: every build of the run in one process instead of one
 * process per target. Nx starts a process per task for a custom executor, and that process
 * (Node, Nx's runner, dockerode, zod, our code) costs ~1 s of CPU — a third of a small driver's
 * build on a 2-core runner (`npm run bench`, build overhead). The trade-off, which is Nx's: a
 * batch's results are cached when the whole batch ends, so an interrupted batch caches nothing.
 *
 * Builds run as many at a time as Nx runs tasks (`--parallel`, nx.json's "parallel":
 * parallelism.ts); each result is reported to Nx as soon as it is known, with that target's own
 * output.
 */
import type { ExecutorContext, TaskGraph } from '@nx/devkit';
import { nxParallelism, PARALLEL_ENV } from '../parallelism.ts';
import { runBuildTask } from './task.ts';
import { cpuShare } from '../../../tools/kmatrix/compile/execute.ts';
import { inParallel } from '../../../tools/kmatrix/core/pool.ts';

interface Done {
  task: string;
  result: { success: boolean; terminalOutput: string; startTime: number; endTime: number };
}

/** What the plugin read from Nx before the run; without it (a batch started some other way), nx.json's. */
export function batchParallelism(env: NodeJS.ProcessEnv, nxJson: { parallel?: number }): number {
  const handed = Number(env[PARALLEL_ENV]);
  return Number.isInteger(handed) && handed >= 1 ? handed : nxParallelism([], nxJson);
}

export default async function* buildDriverBatch(
  taskGraph: TaskGraph,
  _inputs: Record<string, unknown>,
  _overrides: unknown,
  context: ExecutorContext,
): AsyncGenerator<Done> {
  const tasks = Object.values(taskGraph.tasks);
  const parallel = Math.min(batchParallelism(process.env, context.nxJsonConfiguration), tasks.length);
  // Each running build registers its own Ctrl-C handler (compile/container.ts).
  process.setMaxListeners(Math.max(process.getMaxListeners(), parallel * 2 + 10));
  console.log(`kmatrix: ${tasks.length} builds in one process, ${parallel} at a time (nx --parallel)`);

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
