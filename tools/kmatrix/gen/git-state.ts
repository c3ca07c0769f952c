/**
 * The matrix as a git ref holds it: target.json files read in one `git cat-file --batch` (a
 * process per file would make a 5,000-target diff take minutes), and which build inputs outside
 * targets/ changed since then.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';
import { targetSchema, type Target } from '../model/target.ts';
import { packageChanges } from '../model/toolchain.ts';
import type { FileChanges } from './diff.ts';

export async function git(root: string, args: string[], input?: string): Promise<string> {
  try {
    const r = await execa('git', args, { cwd: root, input, maxBuffer: 1 << 30, stripFinalNewline: false });
    return r.stdout;
  } catch (error) {
    const e = error as { stderr?: string; code?: string };
    throw new KmatrixError(
      e.code === 'ENOENT'
        ? '`git` is not installed'
        : `git ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || (error as Error).message}`,
      {
        stage: 'diff',
        cause: error,
        remedy:
          e.code === 'ENOENT'
            ? 'install it: apt-get install -y git'
            : 'pass a ref this repository has (a branch, tag or commit), e.g. --base origin/main',
      },
    );
  }
}

export async function resolveRef(root: string, ref: string): Promise<string> {
  const commit = (await git(root, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).catch(() => '')).trim();
  if (!commit) {
    throw new KmatrixError(`"${ref}" is not a commit of this repository`, {
      stage: 'diff',
      remedy: 'pass a branch, tag or commit with --base (e.g. --base origin/main), or fetch it first',
    });
  }
  return commit;
}

/** name → target, as committed at `commit`. Entries that do not parse are reported by name. */
export async function targetsAt(root: string, commit: string): Promise<Map<string, Target>> {
  const files = (await git(root, ['ls-tree', '-r', '--name-only', '-z', commit, '--', 'targets/']))
    .split('\0')
    .filter((f) => f.endsWith('/target.json'));
  const out = new Map<string, Target>();
  if (files.length === 0) return out;
  const batch = Buffer.from(
    await execa('git', ['cat-file', '--batch'], {
      cwd: root,
      input: `${files.map((f) => `${commit}:${f}`).join('\n')}\n`,
      encoding: 'buffer',
      maxBuffer: 1 << 30,
    }).then((r) => r.stdout),
  );
  let at = 0;
  for (const file of files) {
    const nl = batch.indexOf(10, at);
    const [, type, size] = batch.subarray(at, nl).toString().split(' ');
    if (type !== 'blob') throw new KmatrixError(`cannot read ${file} at ${commit}`, { stage: 'diff' });
    const body = batch.subarray(nl + 1, nl + 1 + Number(size)).toString('utf8');
    at = nl + 1 + Number(size) + 1;
    const value = JSON.parse(body) as { removed?: boolean };
    if (value.removed === true) continue; // a removed-target marker
    const parsed = targetSchema.safeParse(value);
    // A target of an older schema is still a target: compare what is comparable.
    const t = (parsed.success ? parsed.data : value) as Target;
    out.set(t.name, t);
  }
  return out;
}

/** Files changed between `commit` and the working tree (tracked changes plus untracked files). */
export async function changedPaths(root: string, commit: string, paths: string[]): Promise<string[]> {
  const tracked = (await git(root, ['diff', '--name-only', '-z', commit, '--', ...paths])).split('\0');
  const untracked = (await git(root, ['ls-files', '--others', '--exclude-standard', '-z', '--', ...paths])).split('\0');
  return [...new Set([...tracked, ...untracked].filter(Boolean))].sort();
}

/**
 * What changed since `commit` in each input a build has besides target.json. `isBuildCode` is the
 * build's own definition of its code (compile/inputs.ts), passed in so the two cannot disagree.
 */
export async function fileChanges(
  root: string,
  commit: string,
  targets: Iterable<Target>,
  isBuildCode: (path: string) => boolean,
): Promise<FileChanges> {
  const drivers = new Set<string>();
  const toolchains = new Set<string>();
  // A smoke test runs in the boot test's guest, never in a build.
  const smokeTests = new Set<string>();
  for (const t of targets) {
    drivers.add(t.driver.path);
    toolchains.add(t.toolchain.name);
    if (t.driver.smokeTest) smokeTests.add(`${t.driver.path}/${t.driver.smokeTest}`);
  }
  const changed = await changedPaths(root, commit, [
    'drivers',
    'toolchains',
    'plugins/kmatrix',
    'tools/kmatrix',
    ...[...drivers],
  ]);
  const under = (dir: string) => changed.filter((f) => f.startsWith(`${dir}/`) && !smokeTests.has(f));
  return {
    drivers: new Map([...drivers].map((d) => [d, under(d)])),
    toolchainPackages: await lockPackageChanges(root, commit, [...toolchains], changed),
    buildCode: changed.filter(isBuildCode),
  };
}

/** For each toolchain whose lock changed since `commit`: its packages whose version did. */
async function lockPackageChanges(
  root: string,
  commit: string,
  toolchains: string[],
  changed: string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const packagesOf = (text: string | undefined) => {
    try {
      return (JSON.parse(text ?? '{}') as { packages?: Record<string, string> }).packages ?? {};
    } catch {
      return {};
    }
  };
  for (const name of toolchains) {
    const file = `toolchains/${name}/toolchain.lock.json`;
    if (!changed.includes(file)) continue;
    const then = await git(root, ['show', `${commit}:${file}`]).catch(() => undefined);
    const now = await readFile(join(root, file), 'utf8').catch(() => undefined);
    out.set(name, packageChanges(packagesOf(then), packagesOf(now)));
  }
  return out;
}

/** Paths with uncommitted changes (tracked or untracked) under `paths`. */
export async function uncommitted(root: string, paths: string[]): Promise<string[]> {
  const out = await git(root, ['status', '--porcelain', '-z', '--untracked-files=all', '--', ...paths]);
  return out
    .split('\0')
    .filter(Boolean)
    .map((l) => l.slice(3));
}

/** The repository's URL for provenance: CI's, else `origin`'s, else the folder. */
export async function repositoryUrl(root: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.GITHUB_REPOSITORY) return `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}`;
  const origin = (await git(root, ['remote', 'get-url', 'origin']).catch(() => '')).trim();
  return origin || `file://${root}`;
}
