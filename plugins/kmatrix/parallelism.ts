/**
 * One parallelism knob: Nx's. `nx run-many --parallel=N` (else nx.json's "parallel", else Nx's
 * default of 3) is how many tasks Nx runs at once; a `--batch` run is one task process, so the
 * plugin reads the same setting before the tasks start and hands it to the batch, which runs that
 * many builds at once. Read the way Nx reads it (its task orchestrator): `--parallel` alone or
 * `true` means `--maxParallel` or 3, `false` means 1.
 */

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

function count(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1)
    throw new Error(
      `kmatrix: ${flag} must be a whole number ≥ 1 (or true/false), not "${text}" — it is how many builds run at once`,
    );
  return n;
}

/** How many tasks (or builds of a batch) this nx invocation runs at once. */
export function nxParallelism(argv: readonly string[], nxJson: { parallel?: number }): number {
  const { parallel, max } = flagValues(argv);
  if (parallel === 'false') return 1;
  if (parallel === undefined && nxJson.parallel !== undefined)
    return count('nx.json "parallel"', String(nxJson.parallel));
  if (parallel === undefined || parallel === 'true' || parallel === '')
    return max === undefined ? NX_DEFAULT_PARALLEL : count('--maxParallel', max);
  return count('--parallel', parallel);
}
