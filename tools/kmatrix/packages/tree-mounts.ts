/**
 * Where an unpacked package's folders go in a container: each folder directly under `from` in the
 * package's tree is mounted at `to`/<its name>, as installing the package would place it. A rule is
 * data (a distro family states its layout as rules, a build recipe carries them), so the mounts of
 * a build follow from the rule and the package's bytes alone.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { MountRule } from '../model/mount-rule.ts';

export interface TreeMount {
  host: string;
  container: string;
}

/** The folders of an unpacked tree a rule mounts, in name order. */
export async function treeMounts(tree: string, rule: MountRule): Promise<TreeMount[]> {
  const dir = join(tree, rule.from);
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && (!rule.prefix || e.name.startsWith(rule.prefix)))
    .map((e) => e.name)
    .sort()
    .map((name) => ({ host: join(dir, name), container: `${rule.to}/${name}` }));
}

/** Every mount of a tree under several rules. */
export async function treeMountsOf(tree: string, rules: readonly MountRule[]): Promise<TreeMount[]> {
  const out: TreeMount[] = [];
  for (const rule of rules) out.push(...(await treeMounts(tree, rule)));
  return out;
}
