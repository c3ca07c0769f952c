/**
 * Splitting a task list over N runners: deterministic (every runner computes the same split from
 * the same commit, so nothing but the shard's index has to travel through CI outputs) and even by
 * expected build time — longest first onto the least loaded shard (LPT), ties by name and index.
 * A target never timed counts as the median of those that were (1 s when none were).
 */
import type { Timings } from './timings.ts';

export interface Shard {
  index: number;
  projects: string[];
  /** Expected seconds of building. */
  expected: number;
}

export function expectedSeconds(projects: string[], timings: Timings): Map<string, number> {
  const known = projects
    .map((p) => timings[p])
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
  const fallback = known.length ? known[Math.floor(known.length / 2)]! : 1;
  return new Map(projects.map((p) => [p, timings[p] ?? fallback]));
}

export function shardTasks(projects: string[], total: number, timings: Timings): Shard[] {
  const expected = expectedSeconds(projects, timings);
  const shards: Shard[] = Array.from({ length: total }, (_, index) => ({ index, projects: [], expected: 0 }));
  const order = [...new Set(projects)].sort(
    (a, b) => expected.get(b)! - expected.get(a)! || (a < b ? -1 : a > b ? 1 : 0),
  );
  for (const p of order) {
    let least = shards[0]!;
    for (const s of shards) if (s.expected < least.expected) least = s;
    least.projects.push(p);
    least.expected += expected.get(p)!;
  }
  for (const s of shards) s.projects.sort();
  return shards;
}

/** GitHub Actions' limits: 256 jobs per matrix, 1 MB of outputs per job. */
export const GITHUB_MAX_MATRIX_JOBS = 256;
export const GITHUB_MAX_OUTPUT_BYTES = 1024 * 1024;

export interface ShardPlan {
  /** Tasks to run in all. */
  tasks: number;
  /** Shards in all (across every run). */
  total: number;
  /** One workflow run per chunk; each chunk's matrix has at most 256 jobs. */
  chunks: { chunk: number; matrix: { shard: number[] } }[];
  expectedSeconds: number;
}

/**
 * How many shards: enough that each gets about `targetSeconds` of building, at most `maxShards`,
 * at least one per task only when tasks are fewer — an idle runner costs a boot for nothing.
 */
export function planShards(
  projects: string[],
  timings: Timings,
  o: { maxShards: number; targetSeconds: number; maxJobs?: number },
): ShardPlan {
  const expected = expectedSeconds(projects, timings);
  const sum = [...expected.values()].reduce((a, b) => a + b, 0);
  const total =
    projects.length === 0 ? 0 : Math.max(1, Math.min(o.maxShards, projects.length, Math.ceil(sum / o.targetSeconds)));
  const perRun = o.maxJobs ?? GITHUB_MAX_MATRIX_JOBS;
  const chunks: ShardPlan['chunks'] = [];
  for (let first = 0, chunk = 0; first < total; first += perRun, chunk++) {
    chunks.push({
      chunk,
      matrix: { shard: Array.from({ length: Math.min(perRun, total - first) }, (_, i) => first + i) },
    });
  }
  return { tasks: projects.length, total, chunks, expectedSeconds: Math.round(sum) };
}
