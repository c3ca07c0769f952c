/**
 * Makes targets/ equal to a plan: writes new and changed target.json files (each atomically),
 * turns removed ones into "removed" markers (see removedTargetSchema for why they are not
 * deleted), and reports what it did. Same plan → same bytes.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { stableJson, writeFileAtomic } from '../core/atomic-file.ts';
import { TARGET_SCHEMA_VERSION, type RemovedTarget, type Target } from '../model/target.ts';
import { targetDir } from '../model/target-place.ts';
import { inParallel } from '../core/pool.ts';

export interface SyncReport {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: number;
  /** Removed-target markers deleted (--prune-removed). */
  pruned: number;
}

/** Every targets/**\/target.json, live or removed, relative to root. */
export async function existingTargetFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    let entries: Dirent[];
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
  return out.sort();
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

const REMOVED_REASON = 'no longer selected by the policy from the kernel lists';

export function removedMarker(name: string): RemovedTarget {
  return { schemaVersion: TARGET_SCHEMA_VERSION, name, removed: true, reason: REMOVED_REASON };
}

/** The project name in a target file, and whether it is a removed marker (cheap: no schema). */
function peek(text: string, file: string): { name: string; removed: boolean } {
  try {
    const v = JSON.parse(text) as { name?: unknown; removed?: unknown };
    if (typeof v.name === 'string') return { name: v.name, removed: v.removed === true };
  } catch {
    // fall through: a broken file is replaced like any stale one
  }
  return {
    name: dirname(file)
      .replace(/^targets\//, '')
      .split('/')
      .join('--'),
    removed: false,
  };
}

export interface SyncOptions {
  dryRun?: boolean;
  /** Distros whose existing target files are left alone (no kernel list for them this time). */
  keepDistros?: string[];
  /** Delete removed-target markers instead of keeping them (Nx will then re-check every task once). */
  pruneRemoved?: boolean;
  /** Only add or update the given targets; every other file is left as it is (an on-demand request). */
  addOnly?: boolean;
}

export async function syncTargets(root: string, targets: Target[], options: SyncOptions = {}): Promise<SyncReport> {
  const { dryRun = false, keepDistros = [], pruneRemoved = false, addOnly = false } = options;
  const wanted = new Map(targets.map((t) => [join(targetDir(t), 'target.json'), t]));
  const report: SyncReport = { added: [], removed: [], changed: [], unchanged: 0, pruned: 0 };
  const existing = new Map<string, string>();
  const files = await existingTargetFiles(root);
  await inParallel(files, async (f) => {
    existing.set(f, await readFile(join(root, f), 'utf8'));
  });
  // Writes are queued and run a few at a time: 5,000 targets one by one take seconds of syscalls.
  const writes: (() => Promise<void>)[] = [];

  for (const [file, target] of wanted) {
    const text = stableJson(target);
    const current = existing.get(file);
    if (current === text) {
      report.unchanged++;
      continue;
    }
    if (current !== undefined && !peek(current, file).removed) report.changed.push(target.name);
    else report.added.push(target.name);
    if (!dryRun) writes.push(() => writeFileAtomic(join(root, file), text));
  }
  for (const [file, text] of existing) {
    if (wanted.has(file) || addOnly) continue;
    const { name, removed } = peek(text, file);
    // targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json
    if (keepDistros.includes(file.split('/')[2]!) && !removed) {
      report.unchanged++;
      continue;
    }
    if (removed) {
      if (!pruneRemoved) continue;
      report.pruned++;
      if (!dryRun) {
        await rm(join(root, file));
        await removeEmptyParents(root, dirname(join(root, file)));
      }
      continue;
    }
    report.removed.push(name);
    if (!dryRun) {
      if (pruneRemoved) {
        await rm(join(root, file));
        await removeEmptyParents(root, dirname(join(root, file)));
      } else {
        writes.push(() => writeFileAtomic(join(root, file), stableJson(removedMarker(name))));
      }
    }
  }
  await inParallel(writes, (write) => write());
  return report;
}
