/** The projects a run would build, as Nx itself says: all with the target, or those a change affects. */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';

export async function nxBin(root: string): Promise<string> {
  for (const candidate of ['node_modules/nx/dist/bin/nx.js', 'node_modules/nx/bin/nx.js']) {
    const path = join(root, candidate);
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  throw new KmatrixError('nx is not installed in this workspace', { stage: 'shard', remedy: 'run `npm ci` first' });
}

export async function projectsToRun(
  root: string,
  o: { target: string; base?: string; head?: string },
): Promise<string[]> {
  const args = ['show', 'projects', '--with-target', o.target, '--json'];
  if (o.base) args.push('--affected', `--base=${o.base}`, ...(o.head ? [`--head=${o.head}`] : []));
  const r = await execa(process.execPath, [await nxBin(root), ...args], {
    cwd: root,
    reject: false,
    env: { NX_TUI: 'false', FORCE_COLOR: '0' },
  });
  if (r.exitCode !== 0) {
    throw new KmatrixError(
      `nx show projects failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`,
      {
        stage: 'shard',
        remedy: o.base
          ? `check that ${o.base}${o.head ? ` and ${o.head}` : ''} exist in this clone (actions/checkout with fetch-depth: 0)`
          : 'run `npx nx show projects` to see the error',
      },
    );
  }
  const json = r.stdout.slice(r.stdout.indexOf('['));
  return (JSON.parse(json) as string[]).sort();
}
