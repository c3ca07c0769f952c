/**
 * The interpreter of build recipes: a recipe and this runner's resources in, the Docker Engine
 * API's container configuration out. The build creates its container from exactly this (and
 * `kmatrix reproduce --shell` runs the same as `docker run` flags). What the runner contributes —
 * where the image is pulled from, where the unpacked packages and the source copy are on this
 * disk, the uid, the limits and the CPU share — can change where and how fast a build runs, never
 * what it runs. Changing how a recipe is interpreted means bumping RECIPE_VERSION (version.ts).
 */
import type { ContainerCreateOptions } from 'dockerode';
import { cp, lstat, mkdir, symlink } from 'node:fs/promises';
import { execa } from 'execa';
import { join, relative } from 'node:path';
import type { BuildRecipe, RecipeMount } from '../model/recipe.ts';
import { treeMounts } from '../packages/tree-mounts.ts';
import { hashTree } from '../core/hash.ts';
import { expandScripts } from './scripts.ts';
import { sandboxHostConfig, sandboxLimits, userSpec, type SandboxLimits } from './sandbox.ts';

export interface Bind {
  host: string;
  container: string;
  readOnly: boolean;
}

/** Where a recipe's mounts come from on this runner. */
export interface MountSources {
  /** The unpacked tree of the header package with this SHA256 (the store fetches and verifies it). */
  tree(sha256: string): Promise<string>;
  /** The repository root (a source mount's path is relative to it). */
  root: string;
  /** An empty folder of this build: the source copy and the link folders are made in it. */
  scratch: string;
}

type SourceMount = Extract<RecipeMount, { kind: 'source' }>;

/**
 * The files of a source mount (relative to its folder), as Nx sees them: what git tracks or would
 * track (`git ls-files -co --exclude-standard`), so an ignored leftover of a local `make` (a stale
 * .o) never reaches a build whose key does not hash it; outside a git work tree, every file.
 * Without the excluded files.
 */
async function sourceFiles(root: string, m: SourceMount): Promise<Set<string> | undefined> {
  const listed = await execa('git', ['ls-files', '-z', '-co', '--exclude-standard', '--', m.path], {
    cwd: root,
    reject: false,
  });
  if (listed.exitCode !== 0) return undefined;
  const excluded = new Set(m.exclude);
  return new Set(
    listed.stdout
      .split('\0')
      .filter((f) => f.startsWith(`${m.path}/`))
      .map((f) => f.slice(m.path.length + 1))
      .filter((f) => !excluded.has(f)),
  );
}

/** The build's copy of a source mount: the driver's files (sourceFiles), symbolic links as they are. */
async function copySource(m: SourceMount, sources: MountSources): Promise<string> {
  const from = join(sources.root, m.path);
  const to = join(sources.scratch, 'src');
  const files = await sourceFiles(sources.root, m);
  const excluded = new Set(m.exclude);
  await cp(from, to, {
    recursive: true,
    verbatimSymlinks: true,
    filter: async (f) => {
      const rel = relative(from, f);
      if (rel === '' || !files) return !excluded.has(rel);
      if (files.has(rel)) return true;
      // A folder is copied when it holds a listed file (its own entries are filtered in turn).
      return (await lstat(f)).isDirectory() && [...files].some((x) => x.startsWith(`${rel}/`));
    },
  });
  return to;
}

/**
 * Each mount of the recipe made real on this disk, in the recipe's order: package trees (the
 * folders a rule selects), link folders, the source copy. Returns the binds and the source copy.
 */
export async function materializeMounts(
  mounts: readonly RecipeMount[],
  sources: MountSources,
): Promise<{ binds: Bind[]; sourceDir?: string }> {
  const binds: Bind[] = [];
  let sourceDir: string | undefined;
  for (const [i, m] of mounts.entries()) {
    if (m.kind === 'package') {
      for (const t of await treeMounts(await sources.tree(m.sha256), m))
        binds.push({ host: t.host, container: t.container, readOnly: true });
    } else if (m.kind === 'links') {
      const dir = join(sources.scratch, `links-${i}`);
      await mkdir(dir, { recursive: true });
      for (const [name, target] of Object.entries(m.links)) await symlink(target, join(dir, name));
      binds.push({ host: dir, container: m.to, readOnly: true });
    } else {
      sourceDir = await copySource(m, sources);
      binds.push({ host: sourceDir, container: m.to, readOnly: false });
    }
  }
  return { binds, ...(sourceDir ? { sourceDir } : {}) };
}

/** What the runner adds to a recipe. */
export interface Runtime {
  /** Where the recipe's image is pulled from (its lock's repository); the digest is the recipe's. */
  repository: string;
  binds: Bind[];
  /** uid:gid of the recipe's `unprivileged` user on this runner. */
  user: string;
  limits: SandboxLimits;
  /** The build's CPU share, passed in the recipe's jobsEnv. */
  jobs: number;
  labels?: Record<string, string>;
}

/** The image reference a recipe runs: always by its digest. */
export const imageRef = (recipe: Pick<BuildRecipe, 'image'>, repository: string) => `${repository}@${recipe.image}`;

/** The Docker Engine API's container configuration of a recipe on this runner. */
export function containerOptions(recipe: BuildRecipe, runtime: Runtime): ContainerCreateOptions {
  const env = { ...recipe.env, ...(recipe.jobsEnv ? { [recipe.jobsEnv]: String(runtime.jobs) } : {}) };
  return {
    Image: imageRef(recipe, runtime.repository),
    Cmd: expandScripts([...recipe.wrapper, ...recipe.argv], recipe.scripts),
    // The watchdog's stdin (scripts.ts): the attach connection holds it open.
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    WorkingDir: recipe.workdir,
    User: runtime.user,
    Labels: { 'kmatrix.role': 'build', ...runtime.labels },
    HostConfig: {
      // Docker removes it when it exits, even if this process is killed first (Ctrl-C on nx
      // ends the executor before a finally block could).
      AutoRemove: true,
      ...sandboxHostConfig(recipe.sandbox, runtime.limits),
      Binds: runtime.binds.map((b) => `${b.host}:${b.container}:${b.readOnly ? 'ro' : 'rw'}`),
    },
  };
}

/** The same container as `docker run` flags (before the image and the command), for an interactive shell. */
export function dockerRunFlags(options: ContainerCreateOptions): string[] {
  const h = options.HostConfig ?? {};
  return [
    `--network=${h.NetworkMode}`,
    ...(h.CapDrop ?? []).map((c: string) => `--cap-drop=${c}`),
    ...(h.SecurityOpt ?? []).map((o: string) => `--security-opt=${o}`),
    ...(h.ReadonlyRootfs ? ['--read-only'] : []),
    ...Object.entries(h.Tmpfs ?? {}).map(([p, o]) => `--tmpfs=${p}:${o}`),
    `--pids-limit=${h.PidsLimit}`,
    `--memory=${h.Memory}`,
    `--memory-swap=${h.MemorySwap}`,
    `--cpus=${(h.NanoCpus ?? 1e9) / 1e9}`,
    `--user=${options.User}`,
    `--workdir=${options.WorkingDir}`,
    ...(options.Env ?? []).flatMap((e) => ['--env', e]),
    ...(h.Binds ?? []).flatMap((b) => ['--volume', b]),
  ];
}

/** The SHA256 of each file a recipe's source mount copies into the build (what build.json records). */
export async function sourceDigests(
  root: string,
  recipe: Pick<BuildRecipe, 'mounts'>,
): Promise<Record<string, string>> {
  const source = recipe.mounts.find((m) => m.kind === 'source');
  if (!source) return {};
  const excluded = new Set(source.exclude);
  const files = await sourceFiles(root, source);
  const all = await hashTree(join(root, source.path));
  return Object.fromEntries(Object.entries(all).filter(([file]) => !excluded.has(file) && (!files || files.has(file))));
}

/** This runner's resources for a one-off tool container (one CPU, the sandbox's limits). */
export const toolRuntime = (repository: string, binds: Bind[], labels?: Record<string, string>): Runtime => ({
  repository,
  binds,
  user: userSpec(),
  limits: sandboxLimits(1),
  jobs: 1,
  ...(labels ? { labels } : {}),
});
