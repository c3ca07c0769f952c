/**
 * One parallelism knob: Nx's. `nx run-many --parallel=N` (or NX_PARALLEL, else nx.json's
 * "parallel", else Nx's default of 3) is how many tasks Nx runs at once; a `--batch` run is one
 * task process, so the plugin reads the same setting before the tasks start and hands it to the
 * batch, which runs that many builds at once. Read the way Nx reads it (its shared options:
 * readParallelFromArgsAndEnv and concurrency): `--parallel` alone or `true` means `--maxParallel`
 * (or NX_PARALLEL, or 3), `false` means 1, `50%` half the cores. Never an error: whatever Nx
 * accepts runs, and a value Nx cannot read either counts as Nx's default.
 */
import { availableParallelism } from 'node:os';

/** The variable the batch executor reads it from (set by the plugin's preTasksExecution). */
export const PARALLEL_ENV = 'KMATRIX_NX_PARALLEL';

const NX_DEFAULT_PARALLEL = 3;

function flagValues(argv: readonly string[]): { parallel?: string; max?: string } {
  const out: { parallel?: string; max?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--no-parallel') out.parallel = 'false';
    const m = arg.match(/^--(parallel|max-parallel|maxParallel)(?:=(.*))?$/);
    if (!m) continue;
    let value = m[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        value = next;
        i++;
      } else value = 'true';
    }
    if (m[1] === 'parallel') out.parallel = value;
    else out.max = value;
  }
  return out;
}

/** Nx's `concurrency`: a count, or a share of the cores ("50%"), at least 1. */
function concurrency(text: string): number {
  let n = Number.parseInt(text, 10);
  if (text.endsWith('%')) n = (availableParallelism() * n) / 100;
  return Number.isFinite(n) ? Math.max(1, Math.floor(n)) : NX_DEFAULT_PARALLEL;
}

/** How many tasks (or builds of a batch) this nx invocation runs at once. */
export function nxParallelism(
  argv: readonly string[],
  nxJson: { parallel?: number },
  env: NodeJS.ProcessEnv = process.env,
): number {
  const { parallel, max } = flagValues(argv);
  if (parallel === 'false') return 1;
  if (parallel === 'true' || parallel === '' || (parallel === undefined && env.NX_PARALLEL))
    return concurrency(max ?? env.NX_PARALLEL ?? String(NX_DEFAULT_PARALLEL));
  if (parallel !== undefined) return concurrency(parallel);
  return nxJson.parallel !== undefined ? concurrency(String(nxJson.parallel)) : NX_DEFAULT_PARALLEL;
}
