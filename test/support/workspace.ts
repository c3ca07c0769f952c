/**
 * Real temp workspaces for end-to-end tests: a copy of the repository's tracked files in a fresh
 * folder with its own git history and Nx cache, node_modules linked from the repo. Removed after
 * the test; no global chdir.
 */
import { execa } from 'execa';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The nx CLI of this repository, run with `node` (every workspace links this node_modules). */
export const nxBin = join(repoRoot, 'node_modules/nx/dist/bin/nx.js');

/** One header store for the whole test run, so each .deb is downloaded once. */
export const testStore = process.env.KMATRIX_STORE ?? join(tmpdir(), 'kmatrix-test-store');

export interface Result {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they were printed */
  all: string;
}

export interface Workspace {
  dir: string;
  env: NodeJS.ProcessEnv;
  kmatrix(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<Result>;
  nx(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<Result>;
  git(args: string[]): Promise<Result>;
  read(path: string): Promise<string>;
  write(path: string, text: string): Promise<void>;
  commitAll(message: string): Promise<void>;
  remove(): Promise<void>;
}

export async function createWorkspace(prefix = 'kmatrix-ws-', parent = tmpdir()): Promise<Workspace> {
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, prefix));
  const { stdout } = await execa('git', ['ls-files', '-co', '--exclude-standard'], { cwd: repoRoot });
  for (const file of stdout.split('\n')) {
    if (!file || file.startsWith('targets/') || file.startsWith('dist/')) continue;
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await cp(join(repoRoot, file), join(dir, file), { preserveTimestamps: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e; // deleted in the working tree but still listed
    });
  }
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  const ws = workspaceAt(dir);
  await ws.write('.gitignore', 'node_modules\ndist\n.nx\n');
  await ws.git(['init', '-q', '-b', 'main']);
  // No background `git gc --auto` after big commits: it races the workspace's removal.
  await ws.git(['config', 'gc.auto', '0']);
  await ws.commitAll('initial');
  return ws;
}

/** A Workspace object for an existing folder (its own Nx cache, the shared header store). */
function workspaceAt(dir: string): Workspace {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KMATRIX_STORE: testStore,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    NX_CACHE_DIRECTORY: join(dir, '.nx', 'cache'),
    NX_WORKSPACE_DATA_DIRECTORY: join(dir, '.nx', 'workspace-data'),
    FORCE_COLOR: '0',
  };
  const run = async (cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Result> => {
    const r = await execa(cmd, args, {
      cwd: dir,
      env: { ...env, ...extraEnv },
      reject: false,
      all: true,
      extendEnv: false,
      stdin: 'ignore',
    });
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, all: r.all };
  };
  const ws: Workspace = {
    dir,
    env,
    kmatrix: (args, extraEnv) => run(process.execPath, [join(dir, 'tools/kmatrix/cli.ts'), ...args], extraEnv),
    nx: (args, extraEnv) => run(process.execPath, [nxBin, ...args], extraEnv),
    git: (args) => run('git', args),
    read: (path) => readFile(join(dir, path), 'utf8'),
    write: async (path, text) => {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    },
    async commitAll(message) {
      await ws.git(['add', '-A']);
      const r = await ws.git([
        '-c',
        'user.name=test',
        '-c',
        'user.email=test@example.invalid',
        'commit',
        '-qm',
        message,
      ]);
      if (r.exitCode !== 0) throw new Error(`git commit failed: ${r.all}`);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  return ws;
}

/** Another runner: a fresh `git clone` of a workspace, with its own (empty) Nx cache and no dist/. */
export async function cloneWorkspace(from: Workspace, prefix = 'kmatrix-clone-'): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await rm(dir, { recursive: true });
  const r = await execa('git', ['clone', '-q', from.dir, dir], { reject: false });
  if (r.exitCode !== 0) throw new Error(`git clone failed: ${r.stderr}`);
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return workspaceAt(dir);
}

/** Fails the test with the command's own output when it did not succeed. */
export function expectOk(result: Result, what: string): Result {
  if (result.exitCode !== 0) throw new Error(`${what} exited ${result.exitCode}:\n${result.all}`);
  return result;
}

/** The default test policy: the example driver, newest bookworm 6.1 and 6.12 ABIs × amd64 and cloud-amd64. */
export const BOOKWORM_AMD64_POLICY = 'test/fixtures/policy-bookworm-amd64.json';
/** The boot tests' sample: bookworm 6.1 and 6.12 × amd64 and arm64, plus 6.1 cloud-amd64 (another flavour of one ABI). */
export const BOOT_POLICY = 'test/fixtures/policy-boot.json';

/**
 * What a user does before the first build: crawl the archive (what the policy needs), build/pin
 * the toolchains it uses, generate targets, commit.
 */
export async function preparePipeline(
  ws: Workspace,
  policyFile = BOOKWORM_AMD64_POLICY,
  toolchains = ['debian-bookworm'],
): Promise<void> {
  await ws.write(
    'support-matrix.json',
    (await readFile(resolve(repoRoot, policyFile), 'utf8')).replace(
      '"../../support-matrix.schema.json"',
      '"./support-matrix.schema.json"',
    ),
  );
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  expectOk(await ws.kmatrix(['crawl', 'deb']), 'kmatrix crawl deb');
  for (const t of toolchains) expectOk(await ws.kmatrix(['toolchain', 'build', t]), `kmatrix toolchain build ${t}`);
  expectOk(await ws.kmatrix(['gen']), 'kmatrix gen');
  await ws.commitAll('crawl, pin toolchains, generate targets');
}

/**
 * A policy of one target: `driver` (default the example driver) for the newest bookworm 6.1 ABI,
 * amd64 flavour — crawled, pinned and generated like the others, for tests about one build.
 */
export async function prepareOneTarget(
  ws: Workspace,
  driver: Record<string, unknown> = { path: 'drivers/kmx-echo', modules: ['kmx_echo'] },
  name = 'kmx-echo',
): Promise<string> {
  const policy = {
    drivers: { [name]: driver },
    distros: { 'debian-bookworm': { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' } },
    matrix: [
      {
        driver: name,
        distro: 'debian-bookworm',
        archs: ['x86_64'],
        flavours: ['amd64'],
        kernels: ['6.1.0-*'],
        latest: 1,
      },
    ],
  };
  await ws.write('test/fixtures/policy-one-target.json', JSON.stringify(policy, null, 2));
  await preparePipeline(ws, join(ws.dir, 'test/fixtures/policy-one-target.json'));
  const [project] = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'nx show projects').stdout,
  );
  return project as string;
}

/** From Nx's header: "Running target build-driver for N projects" or "… for project NAME"; 0 when it ran nothing. */
export function tasksRun(output: string): number {
  const many = output.match(/Running target build-driver for (\d+) projects/);
  if (many) return Number(many[1]);
  return /Running target build-driver for project /.test(output) ? 1 : 0;
}

/** How many of the tasks Nx took from its cache ("Nx read the output from the cache … for X out of Y tasks"). */
export function cacheHits(output: string): { hits: number; total: number } | undefined {
  const m = output.match(/Cache:\s+(\d+)\/(\d+) hit/);
  return m ? { hits: Number(m[1]), total: Number(m[2]) } : undefined;
}

/**
 * A hand-edited target written as gen would write it: the edited spec with its recipes rendered
 * again (a target.json whose recipes do not match its spec is refused by the build).
 */
export async function writeTarget(ws: Workspace, file: string, target: Record<string, unknown>): Promise<void> {
  const { recipe: _r, boot: _b, ...spec } = target;
  const { withRecipes } = await import('../../tools/kmatrix/recipe/check.ts');
  const { loadGuestLock } = await import('../../tools/kmatrix/model/guest-lock.ts');
  const rendered = withRecipes(spec as Parameters<typeof withRecipes>[0], await loadGuestLock(ws.dir));
  await ws.write(file, `${JSON.stringify(rendered, null, 2)}\n`);
}
