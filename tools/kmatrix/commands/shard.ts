import { appendFile, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { text as streamText } from 'node:stream/consumers';
import { KmatrixError } from '../core/errors.ts';
import { projectsToRun } from '../fleet/affected.ts';
import { GITHUB_MAX_OUTPUT_BYTES, planShards, shardTasks } from '../fleet/shard.ts';
import { loadTimings } from '../fleet/timings.ts';
import { timingsFile } from '../model/paths.ts';
import { workspacePluginOptions } from '../model/plugin-options.ts';
import { defineCommand, wholeNumber } from './command.ts';

const about = `Splits the tasks of a run over N runners: deterministically (every runner computes the same split
from the same commit, so only a shard's index travels through CI) and evenly by expected build
time — each target's last real build duration from dist/kmatrix/timings.json (which every
\`nx run-many\` updates), the median of the known ones for a target never timed, or by count
when nothing is known. Two modes, one of which is required:

  --total N --index I   print shard I's projects, comma-separated (empty when it has none), for
                        \`npx nx run-many -t build-driver --projects="$(…)"\`; --json: a JSON array
  --plan                print how many shards and the GitHub Actions matrix, as JSON:
                        {tasks, total, expectedSeconds, chunks: [{chunk, matrix: {shard: [0, 1, …]}}]}
                        A matrix holds at most 256 jobs (GitHub's limit): past that, one chunk
                        per workflow run (dispatch the others with \`gh workflow run … -f chunk=K\`).

The tasks are every project with the target, or those --base/--head, --projects or
--projects-file select.
`;

async function selection(
  values: { base?: string; head?: string; projects?: string; 'projects-file'?: string; target?: string },
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
    target: values.target ?? workspacePluginOptions(root).buildTargetName,
    ...(values.base ? { base: values.base } : {}),
    ...(values.head ? { head: values.head } : {}),
  });
}

const positive = (name: string, text: string | undefined, fallback: number): number =>
  wholeNumber('shard', name, text) ?? fallback;

export const shardCommand = defineCommand({
  name: 'shard',
  summary: "split a run's tasks evenly over N runners; the GitHub Actions matrix for it",
  about,
  options: {
    total: { type: 'string', value: 'N', help: 'the number of shards (with --index)' },
    index: { type: 'string', value: 'I', help: 'the shard to print, 0 to N-1 (with --total)' },
    json: { type: 'boolean', default: false, help: "with --index: print the shard's projects as a JSON array" },
    plan: { type: 'boolean', default: false, help: 'print the shard plan and the GitHub Actions matrix (see above)' },
    'max-shards': { type: 'string', value: 'N', help: 'with --plan: at most N shards (runners) in all (default 16)' },
    'shard-minutes': {
      type: 'string',
      value: 'M',
      help: 'with --plan: aim at about M minutes of building per shard (default 20)',
    },
    'github-output': {
      type: 'string',
      path: true,
      value: 'FILE',
      help: `with --plan: also append matrix=<chunk 0's matrix>, chunks=<JSON>, total=<N> to FILE
        ($GITHUB_OUTPUT), refusing to pass GitHub's 1 MB limit per job`,
    },
    base: { type: 'string', value: 'REF', help: 'only the projects `nx affected --base=REF` would run' },
    head: { type: 'string', value: 'REF', help: 'with --base: the head of the comparison' },
    projects: { type: 'string', value: 'a,b,…', help: 'exactly these projects' },
    'projects-file': { type: 'string', path: true, value: 'FILE', help: 'one project per line ("-": stdin)' },
    target: {
      type: 'string',
      value: 'NAME',
      help: "the Nx target (default: the plugin's buildTargetName in nx.json, build-driver)",
    },
    timings: {
      type: 'string',
      path: true,
      value: 'FILE',
      help: 'durations to balance by (default dist/kmatrix/timings.json)',
    },
  },
  async run({ values }) {
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
});
