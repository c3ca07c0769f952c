import { appendFile, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { text as streamText } from 'node:stream/consumers';
import { KmatrixError } from '../core/errors.ts';
import { projectsToRun } from '../fleet/affected.ts';
import { GITHUB_MAX_OUTPUT_BYTES, planShards, shardTasks } from '../fleet/shard.ts';
import { loadTimings, timingsFile } from '../fleet/timings.ts';
import { parse, wholeNumber, type Command } from './command.ts';

const help = `Usage: npx kmatrix shard --total N --index I [selection] [--json]
       npx kmatrix shard --plan [--max-shards N] [--shard-minutes M] [selection] [--github-output FILE]

Splits the tasks of a run over N runners: deterministically (every runner computes the same split
from the same commit, so only a shard's index travels through CI) and evenly by expected build
time — each target's last real build duration from dist/kmatrix/timings.json (which every
\`nx run-many\` updates), the median of the known ones for a target never timed, or by count
when nothing is known.

  --total N --index I   print shard I's projects, comma-separated (empty when it has none), for
                        \`npx nx run-many -t build-driver --projects="$(…)"\`; --json: a JSON array
  --plan                print how many shards and the GitHub Actions matrix, as JSON:
                        {tasks, total, expectedSeconds, chunks: [{chunk, matrix: {shard: [0, 1, …]}}]}
                        A matrix holds at most 256 jobs (GitHub's limit): past that, one chunk
                        per workflow run (dispatch the others with \`gh workflow run … -f chunk=K\`).
    --max-shards N      at most N shards (runners) in all (default 16)
    --shard-minutes M   aim at about M minutes of building per shard (default 20)
    --github-output F   also append matrix=<chunk 0's matrix>, chunks=<JSON>, total=<N> to F
                        ($GITHUB_OUTPUT), refusing to pass GitHub's 1 MB limit per job

Selection (default: every project with the target):
  --base REF [--head REF]   only the projects \`nx affected\` would run
  --projects a,b,…          exactly these
  --projects-file FILE      one project per line ("-": stdin)
  --target NAME             the Nx target (default build-driver)
  --timings FILE            durations to balance by (default dist/kmatrix/timings.json)
  -h, --help                show this help
`;

async function selection(
  values: { base?: string; head?: string; projects?: string; 'projects-file'?: string; target: string },
  root: string,
): Promise<string[]> {
  if (values.projects !== undefined)
    return values.projects
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
  if (values['projects-file']) {
    const text =
      values['projects-file'] === '-'
        ? await streamText(process.stdin)
        : await readFile(values['projects-file'], 'utf8');
    return text
      .split('\n')
      .map((p) => p.trim())
      .filter(Boolean);
  }
  return projectsToRun(root, {
    target: values.target,
    ...(values.base ? { base: values.base } : {}),
    ...(values.head ? { head: values.head } : {}),
  });
}

const positive = (name: string, text: string | undefined, fallback: number): number =>
  wholeNumber('shard', name, text) ?? fallback;

export const shardCommand: Command = {
  name: 'shard',
  summary: "split a run's tasks evenly over N runners; the GitHub Actions matrix for it",
  help,
  async run(argv) {
    const { values } = parse('shard', argv, {
      total: { type: 'string' },
      index: { type: 'string' },
      plan: { type: 'boolean', default: false },
      'max-shards': { type: 'string' },
      'shard-minutes': { type: 'string' },
      'github-output': { type: 'string' },
      base: { type: 'string' },
      head: { type: 'string' },
      projects: { type: 'string' },
      'projects-file': { type: 'string' },
      target: { type: 'string', default: 'build-driver' },
      timings: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const root = resolve('.');
    if (values.plan === (values.total !== undefined)) {
      throw new KmatrixError(
        values.plan
          ? '--plan computes the number of shards; it takes no --total'
          : 'pass --total N --index I (one shard) or --plan (the matrix)',
        { stage: 'usage', remedy: 'see `npx kmatrix shard --help`' },
      );
    }
    const timings = await loadTimings(values.timings ?? timingsFile(root));
    const projects = await selection(values, root);
    if (values.plan) {
      const plan = planShards(projects, timings, {
        maxShards: positive('--max-shards', values['max-shards'], 16),
        targetSeconds: 60 * positive('--shard-minutes', values['shard-minutes'], 20),
      });
      const json = JSON.stringify(plan);
      process.stdout.write(`${json}\n`);
      if (values['github-output']) {
        const lines = `matrix=${JSON.stringify(plan.chunks[0]?.matrix ?? { shard: [] })}\nchunks=${JSON.stringify(plan.chunks)}\ntotal=${plan.total}\n`;
        if (Buffer.byteLength(lines) > GITHUB_MAX_OUTPUT_BYTES) {
          throw new KmatrixError(
            `the plan's outputs are ${Buffer.byteLength(lines)} bytes, over GitHub's 1 MB per job`,
            { stage: 'shard', remedy: 'lower --max-shards' },
          );
        }
        await appendFile(values['github-output'], lines);
      }
      process.stderr.write(
        `${plan.tasks} tasks, ~${Math.round(plan.expectedSeconds / 60)} min of building → ${plan.total} shard${plan.total === 1 ? '' : 's'} in ${plan.chunks.length} run${plan.chunks.length === 1 ? '' : 's'}\n`,
      );
      return 0;
    }
    const total = positive('--total', values.total, 1);
    if (values.index === undefined || !/^\d+$/.test(values.index) || Number(values.index) >= total) {
      throw new KmatrixError(`--index must be 0 … ${total - 1}, not "${values.index ?? ''}"`, {
        stage: 'usage',
        remedy: 'shards are numbered from 0: --total 4 --index 3 is the last of four',
      });
    }
    const shard = shardTasks(projects, total, timings)[Number(values.index)]!;
    process.stdout.write(values.json ? `${JSON.stringify(shard.projects)}\n` : `${shard.projects.join(',')}\n`);
    process.stderr.write(
      `shard ${shard.index + 1} of ${total}: ${shard.projects.length} of ${projects.length} tasks, ~${Math.round(shard.expected)} s expected\n`,
    );
    return 0;
  },
};
