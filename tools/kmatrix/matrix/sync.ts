/**
 * Makes targets/ equal to a plan: writes new and changed target.json files (each atomically),
 * removes stale ones and their empty folders, and reports what it did. Same plan → same bytes.
 */
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { stableJson, writeFileAtomic } from '../files/atomic.ts';
import { targetDir, type Target } from './target.ts';

export interface SyncReport {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: number;
}

export async function existingTargetFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name === 'target.json') out.push(relative(root, p));
    }
  }
  await walk(join(root, 'targets'));
  return out;
}

async function removeEmptyParents(root: string, dir: string): Promise<void> {
  const stop = join(root, 'targets');
  for (let d = dir; d.startsWith(stop) && d !== stop; d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return; // not empty
    }
  }
}

/** `keepDistros`: distros whose existing target files are left alone (no kernel list for them this time). */
export async function syncTargets(root: string, targets: Target[], dryRun = false, keepDistros: string[] = []): Promise<SyncReport> {
  const wanted = new Map(targets.map((t) => [join(targetDir(t), 'target.json'), t]));
  const report: SyncReport = { added: [], removed: [], changed: [], unchanged: 0 };
  const existing = new Set(await existingTargetFiles(root));

  for (const [file, target] of wanted) {
    const text = stableJson(target);
    if (existing.has(file)) {
      const current = await readFile(join(root, file), 'utf8');
      if (current === text) {
        report.unchanged++;
        continue;
      }
      report.changed.push(target.name);
    } else {
      report.added.push(target.name);
    }
    if (!dryRun) await writeFileAtomic(join(root, file), text);
  }
  for (const file of [...existing].sort()) {
    if (wanted.has(file)) continue;
    // targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json
    if (keepDistros.includes(file.split('/')[2]!)) {
      report.unchanged++;
      continue;
    }
    report.removed.push(dirname(file).replace(/^targets\//, ''));
    if (!dryRun) {
      await rm(join(root, file));
      await removeEmptyParents(root, dirname(join(root, file)));
    }
  }
  return report;
}
