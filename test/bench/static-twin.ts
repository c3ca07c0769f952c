/**
 * The scale figures' baseline: plain Nx with static projects — the very projects our plugin
 * infers, written out as project.json files beside the same target.json files, in a workspace
 * with the same nx.json (named inputs, parallelism), .env, package lock, driver sources and
 * RECIPE_VERSION file, but no plugin. What differs between the two sides is the plugin itself:
 * loading it, reading and validating target.json files, inferring projects and edges, and its
 * hooks (the remote-cache probe, the run summary). Only the target projects are written (the
 * few driver and toolchain projects are left out), and test-driver's executor becomes a command
 * (the bench never runs it).
 */
import { execa } from 'execa';
import { copyFile, cp, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ProjectConfiguration } from '@nx/devkit';
import { createNodes } from '../../plugins/kmatrix/index.ts';
import { RECIPE_VERSION_FILE } from '../../tools/kmatrix/recipe/version.ts';
import { repoRoot, type Workspace } from '../support/workspace.ts';
import { ONE_TARGET, changeOneTarget } from './synthetic.ts';

const git = (dir: string, args: string[]) =>
  execa('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', ...args], { cwd: dir });

export interface Twin {
  dir: string;
  /** change one target so that exactly one task is affected (the same change as on our side) */
  touchOne(): Promise<void>;
}

export async function staticTwin(ws: Workspace): Promise<Twin> {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-bench-static-'));
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  for (const f of ['package.json', 'package-lock.json', '.env', RECIPE_VERSION_FILE]) {
    await mkdir(dirname(join(dir, f)), { recursive: true });
    await copyFile(join(ws.dir, f), join(dir, f));
  }
  await cp(join(ws.dir, 'drivers'), join(dir, 'drivers'), { recursive: true });
  await writeFile(join(dir, '.gitignore'), 'node_modules\n.nx\ndist\n');
  const nxJson = JSON.parse(await ws.read('nx.json'));
  const options = nxJson.plugins[0].options;
  await writeFile(join(dir, 'nx.json'), JSON.stringify({ ...nxJson, plugins: [] }, null, 2));

  const files = (await git(ws.dir, ['ls-files', 'targets'])).stdout
    .split('\n')
    .filter((f) => f.endsWith('target.json'));
  const results = await createNodes[1](files, options, { nxJsonConfiguration: nxJson, workspaceRoot: ws.dir });
  for (const [file, result] of results) {
    for (const [root, project] of Object.entries(result.projects ?? {})) {
      const config = project as ProjectConfiguration;
      const test = config.targets!['test-driver']!;
      config.targets!['test-driver'] = { ...test, executor: 'nx:run-commands', options: { command: 'true' } };
      await mkdir(join(dir, root), { recursive: true });
      await writeFile(join(dir, root, 'project.json'), JSON.stringify(config));
      await copyFile(join(ws.dir, file), join(dir, file));
    }
  }
  await git(dir, ['init', '-q', '-b', 'main']);
  await git(dir, ['config', 'gc.auto', '0']);
  await git(dir, ['add', '-A']);
  await git(dir, ['commit', '-qm', 'static twin']);
  return {
    dir,
    async touchOne() {
      const file = join(dir, ONE_TARGET);
      await writeFile(file, changeOneTarget(await readFile(file, 'utf8')));
      await git(dir, ['commit', '-qam', 'one target changed']);
    },
  };
}
