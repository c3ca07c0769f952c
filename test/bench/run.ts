/**
 * `npm run bench`: performance figures as ratios against a baseline measured in the same run.
 * Prints one line per figure (name, ours, baseline, ratio) and writes test/bench/RESULTS.md.
 *
 *   graph/cache/affected at scale: our plugin's workspace of N synthetic targets vs plain Nx with
 *   N static project.json projects, both running a no-op cached task (our tasks keep every input
 *   of the real build — target.json, driver sources, toolchain files, build code — so the
 *   hashing is the real one; only the compile is left out).
 *
 *   header fetching: the whole bookworm amd64 matrix's packages from an empty store through a
 *   counting proxy: bytes on the wire ÷ unique bytes needed (each package exactly once → 1.00).
 *
 * Usage: npm run bench [-- --sizes 1000,5000] [-- --runs 3] [-- --no-headers]
 */
import { execa } from 'execa';
import { cpus, totalmem } from 'node:os';
import { mkdir, mkdtemp, rm, symlink, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cacheHits, createWorkspace, repoRoot, type Workspace } from '../support/workspace.ts';
import { syntheticKernelList, syntheticPolicy } from './synthetic.ts';
import { measure, type Measured } from './peak-memory.ts';
import { headerFetch } from './header-fetch.ts';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '1000,5000' }, runs: { type: 'string', default: '3' }, headers: { type: 'boolean', default: true } }, allowNegative: true });
const sizes = values.sizes.split(',').map(Number).filter((n) => n > 0);
const runs = Number(values.runs);
const nxBin = join(repoRoot, 'node_modules/nx/dist/bin/nx.js');

interface Side {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** change one target so that exactly one task is affected */
  touchOne(): Promise<void>;
}

function nxEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    FORCE_COLOR: '0',
    NX_CACHE_DIRECTORY: join(dir, '.nx', 'cache'),
    NX_WORKSPACE_DATA_DIRECTORY: join(dir, '.nx', 'workspace-data'),
  };
}

const git = (dir: string, args: string[]) => execa('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', ...args], { cwd: dir });

async function ours(n: number, lines: string[]): Promise<Side & { ws: Workspace }> {
  const ws = await createWorkspace(`kmatrix-bench-ours-${n}-`);
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  await ws.write('support-matrix.json', JSON.stringify(syntheticPolicy, null, 2));
  await ws.write('kernels/synthetic.json', JSON.stringify(syntheticKernelList(n / 2)));
  const nxJson = JSON.parse(await ws.read('nx.json'));
  nxJson.plugins = [{ plugin: './plugins/kmatrix', options: { benchmarkNoopBuild: true } }];
  await ws.write('nx.json', JSON.stringify(nxJson, null, 2));
  const gen = await measure(process.execPath, [join(ws.dir, 'tools/kmatrix/cli.ts'), 'gen'], { cwd: ws.dir, env: ws.env }); // (stderr lists every target; kept out of the report)
  if (gen.exitCode !== 0) throw new Error(`gen failed:\n${gen.output.slice(-2000)}`);
  // Baseline for gen: the same number of files written by a plain loop, one by one.
  const plain = await mkdtemp(join(tmpdir(), 'kmatrix-bench-plain-'));
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    await mkdir(join(plain, String(i)), { recursive: true });
    await writeFile(join(plain, String(i), 'target.json'), '{}\n');
  }
  const plainSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  await rm(plain, { recursive: true, force: true });
  lines.push(line(`gen, ${n} targets`, gen.seconds, plainSeconds, gen.peakBytes));
  await ws.commitAll('synthetic matrix');
  const one = 'targets/kmx-echo/debian-bookworm/6.1.0-1-amd64/x86_64/target.json';
  return {
    ws,
    dir: ws.dir,
    env: ws.env,
    async touchOne() {
      const t = JSON.parse(await ws.read(one));
      t.headers[0].sha256 = t.headers[0].sha256.replace(/^./, (c: string) => (c === 'a' ? 'b' : 'a'));
      await ws.write(one, `${JSON.stringify(t, null, 2)}\n`);
      await ws.commitAll('one target changed');
    },
  };
}

async function baseline(n: number): Promise<Side> {
  const dir = await mkdtemp(join(tmpdir(), `kmatrix-bench-plain-nx-${n}-`));
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'plain', private: true, type: 'module' }));
  const nxJson = JSON.parse(await readFile(join(repoRoot, 'nx.json'), 'utf8'));
  nxJson.plugins = [];
  await writeFile(join(dir, 'nx.json'), JSON.stringify(nxJson, null, 2));
  await writeFile(join(dir, '.gitignore'), 'node_modules\n.nx\ndist\n');
  for (let i = 0; i < n; i++) {
    const root = `projects/p${i}`;
    await mkdir(join(dir, root), { recursive: true });
    await writeFile(join(dir, root, 'target.json'), JSON.stringify({ i }) + '\n');
    await writeFile(
      join(dir, root, 'project.json'),
      JSON.stringify({ name: `p${i}`, root, targets: { 'build-driver': { executor: 'nx:run-commands', options: { command: 'true' }, cache: true, inputs: ['{projectRoot}/**/*'], outputs: [`{workspaceRoot}/dist/${root}`] } } }),
    );
  }
  await git(dir, ['init', '-q', '-b', 'main']);
  await git(dir, ['config', 'gc.auto', '0']);
  await git(dir, ['add', '-A']);
  await git(dir, ['commit', '-qm', 'plain']);
  return {
    dir,
    env: nxEnv(dir),
    async touchOne() {
      await writeFile(join(dir, 'projects/p0/target.json'), '{"i":"changed"}\n');
      await git(dir, ['commit', '-qam', 'one changed']);
    },
  };
}

async function median(side: Side, args: string[], check?: (m: Measured) => void): Promise<Measured> {
  const all: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    const m = await measure(process.execPath, [nxBin, ...args], { cwd: side.dir, env: side.env });
    if (m.exitCode !== 0) throw new Error(`nx ${args.join(' ')} failed in ${side.dir}:\n${m.output.slice(-3000)}`);
    check?.(m);
    all.push(m);
  }
  all.sort((a, b) => a.seconds - b.seconds);
  const mid = all[Math.floor(all.length / 2)]!;
  return { ...mid, peakBytes: Math.max(...all.map((m) => m.peakBytes)) };
}

const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
function line(name: string, oursS: number, baseS: number, peak?: number): string {
  return `${name}: ours ${oursS.toFixed(2)} s, baseline ${baseS.toFixed(2)} s, ratio ${(oursS / baseS).toFixed(2)}${peak ? `, peak ${mib(peak)}` : ''}`;
}

function expectCached(n: number) {
  return (m: Measured) => {
    const hits = cacheHits(m.output);
    if (!hits || hits.hits !== n || hits.total !== n) throw new Error(`expected ${n}/${n} cache hits, got ${JSON.stringify(hits)}:\n${m.output.slice(-2500)}`);
  };
}

async function main(): Promise<void> {
  const lines: string[] = [];
  const print = (l: string) => {
    lines.push(l);
    process.stdout.write(`${l}\n`);
  };
  if (values.headers) {
    process.stderr.write('fetching every header package of the bookworm amd64 matrix into an empty store…\n');
    const h = await headerFetch();
    print(
      `header fetching, ${h.packages} unique packages: ours ${(h.downloadedBytes / 2 ** 20).toFixed(1)} MiB downloaded in ${h.seconds.toFixed(1)} s (${h.requests} requests, ${h.retries} retried after a network fault), ` +
        `baseline ${(h.uniqueBytes / 2 ** 20).toFixed(1)} MiB needed, ratio ${(h.downloadedBytes / h.uniqueBytes).toFixed(2)}`,
    );
  }
  for (const n of sizes) {
    process.stderr.write(`preparing ${n} targets…\n`);
    const genLines: string[] = [];
    const a = await ours(n, genLines);
    genLines.forEach(print);
    const b = await baseline(n);
    try {
      const show = [await median(a, ['show', 'projects']), await median(b, ['show', 'projects'])] as const;
      print(line(`nx show projects, ${n} targets`, show[0].seconds, show[1].seconds, show[0].peakBytes));
      process.stderr.write(`filling the caches (${n} no-op tasks each)…\n`);
      for (const side of [a, b]) {
        const fill = await measure(process.execPath, [nxBin, 'run-many', '-t', 'build-driver', '--output-style=static'], { cwd: side.dir, env: side.env });
        if (fill.exitCode !== 0) throw new Error(`fill run failed:\n${fill.output.slice(-3000)}`);
      }
      const cached = [await median(a, ['run-many', '-t', 'build-driver', '--output-style=static'], expectCached(n)), await median(b, ['run-many', '-t', 'build-driver', '--output-style=static'], expectCached(n))] as const;
      print(line(`all-cached nx run-many, ${n} targets`, cached[0].seconds, cached[1].seconds, cached[0].peakBytes));
      await a.touchOne();
      await b.touchOne();
      const oneTask = (m: Measured) => {
        if (!/Running target build-driver for project /.test(m.output)) throw new Error(`expected exactly 1 task:\n${m.output.slice(-1500)}`);
      };
      const aff = [await median(a, ['affected', '-t', 'build-driver', '--base=HEAD~1', '--output-style=static'], oneTask), await median(b, ['affected', '-t', 'build-driver', '--base=HEAD~1', '--output-style=static'], oneTask)] as const;
      print(line(`nx affected after one changed target (1 task), ${n} targets`, aff[0].seconds, aff[1].seconds, aff[0].peakBytes));
    } finally {
      await a.ws.remove();
      await rm(b.dir, { recursive: true, force: true });
    }
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${mib(totalmem())} RAM, Node ${process.version}, nx ${JSON.parse(await readFile(join(repoRoot, 'node_modules/nx/package.json'), 'utf8')).version}`;
  const results = [
    '# Benchmark results',
    '',
    `Last run: ${new Date().toISOString().slice(0, 10)} on ${machine}; median of ${runs} runs, daemon off.`,
    'Baseline: plain Nx with the same number of static project.json projects (no plugin), same no-op cached task; for gen, a loop writing the same number of files.',
    '',
    ...lines.map((l) => `- ${l}`),
    '',
  ].join('\n');
  await writeFile(join(repoRoot, 'test/bench/RESULTS.md'), results);
  process.stderr.write('wrote test/bench/RESULTS.md\n');
}

await main();
