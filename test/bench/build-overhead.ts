/**
 * Bench figure "build overhead": a cold build through `nx run-many -t build-driver
 * --parallel=<cores>`, against a plain shell loop that runs the same `make` in the same containers
 * (image by digest, same mounts, environment and user) with the same parallelism through
 * `xargs -P`, and against plain Nx running that loop's very jobs (plain-nx-jobs.ts: Nx's own
 * floor). Headers are in the store and the toolchain is built before any side is timed;
 * every side starts from fresh copies of the driver's sources. Two drivers:
 *   - the example driver on the full bookworm amd64 matrix (every ABI × amd64/cloud-amd64/rt-amd64
 *     in the committed kernel list), with Nx's per-task mode and driverkit's pattern besides;
 *   - jool, a real multi-file DKMS driver (three modules) imported from Debian's archive, on four
 *     kernels: there the compile, not the tool, dominates.
 */
import { execa } from 'execa';
import { cpus } from 'node:os';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBuild, targetFileFor } from '../../tools/kmatrix/compile/execute.ts';
import { prepareContainer, type BuildContainer } from '../../tools/kmatrix/compile/prepare.ts';
import { expandScripts } from '../../tools/kmatrix/recipe/scripts.ts';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import { nameParts, outputDir } from '../../tools/kmatrix/model/target-place.ts';
import { createWorkspace, expectOk, testStore, type Workspace } from '../support/workspace.ts';
import { debianPackage } from '../support/debian-package.ts';
import { busySeconds } from './cpu-time.ts';
import { plainNxJobs, type PlainNxJobs } from './plain-nx-jobs.ts';
import { coldNxRun } from './cold-run.ts';
import { median } from './stats.ts';

export interface BuildOverhead {
  driver: string;
  targets: number;
  parallel: number;
  /** `nx run-many -t build-driver --batch`: one process builds every target */
  batchSeconds: number;
  /** `nx run-many -t build-driver`: Nx's default, one process per target */
  perTaskSeconds?: number;
  baselineSeconds: number;
  /** the machine's busy CPU-seconds during a run (median), containers included: work done, not waiting */
  batchCpuSeconds: number;
  baselineCpuSeconds: number;
  /** plain Nx running the loop's very jobs (plain-nx-jobs.ts): Nx's own floor over the loop */
  plainNxSeconds: number;
  plainNxCpuSeconds: number;
  /** driverkit's pattern: each build fetches and unpacks its own headers (driverkitJob) */
  driverkitSeconds?: number;
  /** Each side's seconds per round, in round order: for paired ratios (stats.ts) */
  rounds: { baseline: number[]; batch: number[]; plainNx: number[]; perTask: number[]; driverkit: number[] };
}

/** What a figure builds: its policy, and what to do to the workspace before writing it. */
interface Subject {
  driver: string;
  setup(ws: Workspace): Promise<void>;
  policy(ws: Workspace): Promise<unknown>;
  /** Nx's per-task mode and driverkit's pattern too (the example driver only: they take long). */
  allSides: boolean;
}

export const EXAMPLE: Subject = {
  driver: 'kmx-echo',
  setup: async () => {},
  policy: async () => FULL_BOOKWORM_AMD64,
  allSides: true,
};

/** jool-dkms from bookworm: three modules from dozens of sources, built as DKMS builds them. */
export const DKMS: Subject = {
  driver: 'jool',
  setup: async (ws) => {
    expectOk(
      await ws.kmatrix(['driver', 'import', await debianPackage('jool-dkms', ws.dir), '--name', 'jool']),
      'import',
    );
  },
  policy: async (ws) => {
    const policy = JSON.parse(await ws.read('support-matrix.json'));
    policy.matrix = [
      {
        driver: 'jool',
        distro: 'debian-bookworm',
        archs: ['x86_64'],
        flavours: ['amd64', 'cloud-amd64'],
        kernels: ['6.1.0-56', '6.1.0-57'],
      },
    ];
    return policy;
  },
  allSides: false,
};

/** The .ko files under a folder, any depth (a DKMS tree builds its modules in subfolders). */
function modulesUnder(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ko'))
    : [];
}

const FULL_BOOKWORM_AMD64 = {
  drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } },
  distros: { 'debian-bookworm': { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' } },
  matrix: [
    {
      driver: 'kmx-echo',
      distro: 'debian-bookworm',
      archs: ['x86_64'],
      flavours: ['amd64', 'cloud-amd64', 'rt-amd64'],
      kernels: ['6.1.0-*', '6.12.*'],
    },
  ],
};

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** `docker run` of the recipe's image, workdir and environment as `user`, with these volumes and command; its output into work/build.log. */
function dockerRun(c: BuildContainer, user: string, volumes: string[], command: string[], work: string): string {
  const run = [
    'docker',
    'run',
    '--rm',
    '--network',
    'none',
    '--user',
    user,
    '--workdir',
    c.options.WorkingDir!,
    ...(c.options.Env ?? []).flatMap((e) => ['--env', e]),
    ...volumes.flatMap((v) => ['--volume', v]),
    c.options.Image!,
    ...command,
  ];
  return `${run.map(quote).join(' ')} > ${quote(join(work, 'build.log'))} 2>&1`;
}

/** One target's line of the baseline: fresh sources, then `docker run` of the very same command, without the watchdog. */
function shellJob(c: BuildContainer, argv: string[], driverDir: string, work: string): string {
  const src = join(work, 'src');
  const volumes = (c.options.HostConfig?.Binds ?? []).map((b) =>
    b.startsWith(`${c.sourceDir}:`) ? `${src}${b.slice(c.sourceDir.length)}` : b,
  );
  // A plain docker run as the invoking user: the baseline has no sandbox to pay for.
  const user = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
  return [
    `rm -rf ${quote(work)}`,
    `mkdir -p ${quote(work)}`,
    `cp -r ${quote(driverDir)} ${quote(src)}`,
    dockerRun(c, user, volumes, argv, work),
  ].join(' && ');
}

/**
 * One target's line in driverkit's pattern: no shared header store — the target's header packages
 * are fetched into its own build (copied from a local folder: a download's best case) and
 * unpacked inside its container (dpkg-deb and tar) before the same make runs.
 */
function driverkitJob(c: BuildContainer, argv: string[], driverDir: string, work: string, debs: string[]): string {
  const src = join(work, 'src');
  // (--keep-directory-symlink: the packages' ./lib must not replace the image's merged-/usr link.)
  const unpackThenBuild =
    'for d in /kmx-debs/*.deb; do dpkg-deb --fsys-tarfile "$d" | tar -x -C / --keep-directory-symlink || exit 1; done && exec "$@"';
  const volumes = [`${src}:${c.options.WorkingDir!}`, `${join(work, 'debs')}:/kmx-debs:ro`];
  return [
    `rm -rf ${quote(work)}`,
    `mkdir -p ${quote(join(work, 'debs'))}`,
    `cp ${debs.map(quote).join(' ')} ${quote(join(work, 'debs'))}`,
    `cp -r ${quote(driverDir)} ${quote(src)}`,
    // As driverkit's builder: root, to unpack into the image's /usr.
    dockerRun(c, '0:0', volumes, ['sh', '-c', unpackThenBuild, 'sh', ...argv], work),
  ].join(' && ');
}

async function prepare(subject: Subject): Promise<{
  ws: Workspace;
  names: string[];
  jobs: string[];
  driverkit: string[];
  work: string;
}> {
  const ws = await createWorkspace('kmatrix-bench-build-');
  await ws.write('support-matrix.json', JSON.stringify(FULL_BOOKWORM_AMD64, null, 2));
  for (const f of await readdir(join(ws.dir, 'kernels')))
    if (f !== 'debian-bookworm-x86_64.json') await rm(join(ws.dir, 'kernels', f));
  await subject.setup(ws);
  await ws.write('support-matrix.json', JSON.stringify(await subject.policy(ws), null, 2));
  expectOk(await ws.kmatrix(['toolchain', 'build', 'debian-bookworm']), 'kmatrix toolchain build debian-bookworm');
  expectOk(await ws.kmatrix(['gen']), 'kmatrix gen');
  await ws.commitAll(`the ${subject.driver} matrix`);
  const names = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'nx show projects').stdout,
  ) as string[];

  // Headers into the store and the image present, for both sides, before anything is timed.
  process.env.KMATRIX_STORE = testStore;
  const work = await mkdtemp(join(tmpdir(), 'kmatrix-bench-loop-'));
  const jobs: string[] = [];
  const driverkit: string[] = [];
  const store = new HeaderStore(testStore);
  for (const [i, name] of names.entries()) {
    const opened = await openBuild(ws.dir, targetFileFor(ws.dir, name), (l) => process.stderr.write(`  ${l}\n`));
    const prepared = await prepareContainer(opened);
    // The container's description needs a real folder for its sources copy; each shell job mounts its own fresh copy there instead.
    const container = await prepared.container(ws.dir, await mkdtemp(join(work, 'recipe-')));
    jobs.push(
      shellJob(
        container,
        expandScripts(opened.target.recipe.argv),
        join(ws.dir, opened.target.driver.path),
        join(work, String(i)),
      ),
    );
    driverkit.push(
      driverkitJob(
        container,
        expandScripts(opened.target.recipe.argv),
        join(ws.dir, opened.target.driver.path),
        join(work, `dk-${i}`),
        opened.target.headers.map((h) => store.debPath(h.sha256)),
      ),
    );
  }
  return { ws, names, jobs, driverkit, work };
}

/** xargs reads one job per line, and a DKMS recipe's script has many: each job is a file of its own. */
async function jobList(work: string, name: string, jobs: string[]): Promise<{ list: string; lines: string[] }> {
  await mkdir(join(work, name));
  const lines: string[] = [];
  for (const [i, job] of jobs.entries()) {
    const file = join(work, name, `${i}.sh`);
    await writeFile(file, `${job}\n`);
    lines.push(`sh ${quote(file)}`);
  }
  await writeFile(join(work, `${name}.txt`), `${lines.join('\n')}\n`);
  return { list: join(work, `${name}.txt`), lines };
}

export async function buildOverhead(runs: number, subject: Subject): Promise<BuildOverhead> {
  const parallel = cpus().length;
  const { ws, names, jobs, driverkit, work } = await prepare(subject);
  let plain: PlainNxJobs | undefined;
  try {
    const { list: script, lines: jobLines } = await jobList(work, 'jobs', jobs);
    const { list: dkScript } = await jobList(work, 'driverkit-jobs', driverkit);
    plain = await plainNxJobs(jobLines, ws.env);
    /** Each target's folder of a side that ran the shell jobs holds a module. */
    const expectModules = (side: string, folder: (i: number) => string) => {
      for (let i = 0; i < names.length; i++) {
        if (modulesUnder(join(work, folder(i), 'src')).length === 0)
          throw new Error(`${side} built no module for ${names[i]}`);
      }
    };
    const shellLoop = async (file: string, folder: (i: number) => string): Promise<number> => {
      const start = process.hrtime.bigint();
      const r = await execa('sh', ['-c', `xargs -d '\\n' -P ${parallel} -I{} sh -c {} < ${quote(file)}`], {
        reject: false,
        all: true,
      });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (r.exitCode !== 0) throw new Error(`the shell loop failed:\n${r.all.slice(-3000)}`);
      // Checked after the clock stops, as the Nx sides' outputs are.
      expectModules('the shell loop', folder);
      return seconds;
    };
    const loop = () => shellLoop(script, String);
    // Plain Nx runs the loop's very jobs, in the loop's folders: those are emptied first (untimed),
    // so that the check below sees what this side built, not what the loop left.
    const plainNx = async (): Promise<number> => {
      for (let i = 0; i < names.length; i++) await rm(join(work, String(i)), { recursive: true, force: true });
      const seconds = await plain!.run(parallel);
      expectModules('plain nx', String);
      return seconds;
    };
    const driverkitLoop = () => shellLoop(dkScript, (i) => `dk-${i}`);
    const nx = async (batch: boolean): Promise<number> => {
      await rm(join(ws.dir, 'dist'), { recursive: true, force: true });
      const m = await coldNxRun(ws.dir, ws.env, [
        'run-many',
        '-t',
        'build-driver',
        `--parallel=${parallel}`,
        '--output-style=static',
        ...(batch ? ['--batch'] : []),
      ]);
      for (const name of names) {
        if (modulesUnder(outputDir(ws.dir, nameParts(name))).length === 0)
          throw new Error(`nx built no module for ${name}`);
      }
      return m.seconds;
    };
    // Warm the page cache (header trees, image layers) once, untimed, for all sides alike.
    await loop();
    const baseline: number[] = [];
    const baselineCpu: number[] = [];
    const batchCpu: number[] = [];
    const plainRuns: number[] = [];
    const plainCpu: number[] = [];
    const busy = async (side: () => Promise<number>, seconds: number[], cpu: number[]) => {
      const before = busySeconds();
      seconds.push(await side());
      cpu.push(busySeconds() - before);
    };
    const perTask: number[] = [];
    const batch: number[] = [];
    const driverkitRuns: number[] = [];
    // Interleaved, so that a slow minute on a shared machine does not land on one side only, and
    // the three compared sides take turns going first (loop, batch, plain Nx; then batch, plain
    // Nx, loop; …), so that what a side leaves behind (dirty pages to write back, a warm cache)
    // does not always fall on the same next side.
    const compared = [
      { name: 'shell loop', run: () => busy(loop, baseline, baselineCpu) },
      { name: 'nx --batch', run: () => busy(() => nx(true), batch, batchCpu) },
      { name: "plain nx over the loop's jobs", run: () => busy(plainNx, plainRuns, plainCpu) },
    ];
    for (let i = 0; i < runs; i++) {
      const order = [...compared.slice(i % 3), ...compared.slice(0, i % 3)];
      process.stderr.write(
        `build overhead (${subject.driver}), run ${i + 1}/${runs}: ${names.length} targets, ${parallel} at a time — ${order.map((s) => s.name).join(', ')}${subject.allSides ? ", nx per task, driverkit's pattern" : ''}…\n`,
      );
      for (const side of order) await side.run();
      if (!subject.allSides) continue;
      perTask.push(await nx(false));
      driverkitRuns.push(await driverkitLoop());
    }
    return {
      driver: subject.driver,
      targets: names.length,
      parallel,
      baselineSeconds: median(baseline),
      batchSeconds: median(batch),
      baselineCpuSeconds: median(baselineCpu),
      batchCpuSeconds: median(batchCpu),
      plainNxSeconds: median(plainRuns),
      plainNxCpuSeconds: median(plainCpu),
      ...(subject.allSides ? { perTaskSeconds: median(perTask), driverkitSeconds: median(driverkitRuns) } : {}),
      rounds: { baseline, batch, plainNx: plainRuns, perTask, driverkit: driverkitRuns },
    };
  } finally {
    await plain?.remove();
    await ws.remove();
    await rm(work, { recursive: true, force: true });
  }
}
