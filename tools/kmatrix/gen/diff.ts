/**
 * The matrix diff: the generated targets against a base (the last published state), target by
 * target, and for each changed one which build input changed — the same inputs the Nx plugin
 * hashes, so what this reports is what `nx affected` rebuilds.
 */
import type { AnyTarget, Target } from '../model/target.ts';
import { fieldDifferences, renderDifference, type FieldDifference } from '../recipe/check.ts';

/**
 * Recipe fields that changed while the spec fields they come from did not (those are reported
 * above): a change in how kmatrix renders recipes, e.g. a new make argument or script.
 */
function recipeChanges(before: AnyTarget, after: Target): FieldDifference[] {
  // A target of schema 1 (before recipes): its recipe is new, not changed field by field.
  if (!('recipe' in before))
    return [{ field: 'recipe', committed: '(none: target.json of schema 1)', rendered: 'rendered by gen' }];
  const specChanged = (field: string) =>
    (field.startsWith('recipe.image') && before.toolchain.digest !== after.toolchain.digest) ||
    (field.startsWith('recipe.mounts') && !same(before.headers, after.headers)) ||
    ((field.startsWith('recipe.env') || field.startsWith('recipe.argv')) && !same(before.build, after.build)) ||
    ((field.startsWith('recipe.mounts') ||
      field.startsWith('recipe.scripts') ||
      field.startsWith('recipe.argv') ||
      field.startsWith('boot.smokeTest') ||
      field.startsWith('boot.init')) &&
      !same(before.driver, after.driver)) ||
    (field.startsWith('boot.kernel') && !same(before.kernel.image, after.kernel.image));
  return [
    ...fieldDifferences(before.recipe, after.recipe, 'recipe'),
    ...fieldDifferences(before.boot, after.boot, 'boot'),
  ].filter((d) => !specChanged(d.field));
}

/** The kinds of input a target's build hashes (compile/inputs.ts). */
/** image: the kernel test-driver boots (it never changes a build) */
export type InputKind = 'headers' | 'toolchain' | 'flags' | 'recipe' | 'source' | 'build-code' | 'image' | 'target';

export interface InputChange {
  input: InputKind;
  /** Human-readable, e.g. "linux-headers-6.1.0-47-common 6.1.170-3: sha256 845e73df… → 0a1b2c3d…". */
  detail: string;
}

export interface ChangedTarget {
  name: string;
  changes: InputChange[];
}

export interface MatrixDiff {
  base: string;
  added: string[];
  removed: string[];
  changed: ChangedTarget[];
}

/** What changed outside target.json between base and now, as paths (from git). */
export interface FileChanges {
  /** driver path → changed files under it */
  drivers: Map<string, string[]>;
  /** toolchain name → its packages whose pinned version changed ("make: 4.3-4.1 → 4.3-4.2"), if its lock did */
  toolchainPackages?: Map<string, string[]>;
  /** changed files of the plugin and build library */
  buildCode: string[];
}

const short = (s: string) =>
  /^(sha256:)?[0-9a-f]{64}$/.test(s) ? `${s.replace(/^(sha256:)?([0-9a-f]{12}).*/, '$1$2')}…` : s;

function headerChanges(before: Target['headers'], after: Target['headers']): InputChange[] {
  const key = (h: Target['headers'][number]) => `${h.role} ${h.hostArch ?? ''}`;
  const out: InputChange[] = [];
  const old = new Map(before.map((h) => [key(h), h]));
  for (const h of after) {
    const o = old.get(key(h));
    old.delete(key(h));
    if (!o) out.push({ input: 'headers', detail: `+ ${h.name} ${h.version}` });
    else if (o.name !== h.name || o.version !== h.version)
      out.push({ input: 'headers', detail: `${o.name} ${o.version} → ${h.name} ${h.version}` });
    else if (o.sha256 !== h.sha256 || o.size !== h.size)
      out.push({ input: 'headers', detail: `${h.name} ${h.version}: sha256 ${short(o.sha256)} → ${short(h.sha256)}` });
    else if (o.url !== h.url) out.push({ input: 'headers', detail: `${h.name} ${h.version}: url ${o.url} → ${h.url}` });
  }
  for (const o of old.values()) out.push({ input: 'headers', detail: `- ${o.name} ${o.version}` });
  return out;
}

const listed = (files: string[]) =>
  files.length <= 3 ? files.join(', ') : `${files.slice(0, 3).join(', ')} and ${files.length - 3} more`;

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function targetChanges(before: AnyTarget, after: Target, files: FileChanges): InputChange[] {
  const out = headerChanges(before.headers, after.headers);
  const tb = before.toolchain;
  const ta = after.toolchain;
  if (tb.name !== ta.name) out.push({ input: 'toolchain', detail: `${tb.name} → ${ta.name}` });
  else if (tb.digest !== ta.digest)
    out.push({ input: 'toolchain', detail: `${ta.name} ${short(tb.digest)} → ${short(ta.digest)}` });
  if (tb.gcc !== ta.gcc) out.push({ input: 'toolchain', detail: `gcc ${tb.gcc} → ${ta.gcc}` });
  // The image is in the recipe by digest: the lock's package changes say what made a new one.
  if (tb.digest !== ta.digest)
    for (const change of files.toolchainPackages?.get(ta.name) ?? [])
      out.push({ input: 'toolchain', detail: `package ${change}` });
  for (const field of ['makeArgs', 'kcflags', 'env', 'strictCompiler'] as const) {
    if (!same(before.build[field], after.build[field]))
      out.push({
        input: 'flags',
        detail: `${field}: ${JSON.stringify(before.build[field])} → ${JSON.stringify(after.build[field])}`,
      });
  }
  for (const d of recipeChanges(before, after)) out.push({ input: 'recipe', detail: renderDifference(d) });
  if (!same(before.driver, after.driver))
    out.push({ input: 'source', detail: `driver ${JSON.stringify(before.driver)} → ${JSON.stringify(after.driver)}` });
  const sources = files.drivers.get(after.driver.path) ?? [];
  if (sources.length > 0) out.push({ input: 'source', detail: `changed: ${listed(sources)}` });
  if (files.buildCode.length > 0) out.push({ input: 'build-code', detail: `changed: ${listed(files.buildCode)}` });
  const [ib, ia] = [before.kernel.image, after.kernel.image];
  if (!same(ib, ia) || before.kernel.imageGap !== after.kernel.imageGap) {
    const detail =
      ib && ia
        ? `${ia.name}: ${ib.version} → ${ia.version}, sha256 ${short(ib.sha256)} → ${short(ia.sha256)}`
        : ia
          ? `+ ${ia.name} ${ia.version}`
          : `- ${ib?.name ?? 'no image'}: ${after.kernel.imageGap ?? 'none recorded'}`;
    out.push({ input: 'image', detail });
  }
  if (out.length === 0 && !same(before, after)) {
    // Anything else in target.json (kernelDir, kernel metadata) is still part of the task's hash.
    out.push({ input: 'target', detail: 'target.json changed (kernel metadata)' });
  }
  return out;
}

/** `files` per target when targets were published from different commits. */
export function diffMatrix(
  base: string,
  before: Map<string, AnyTarget>,
  after: Map<string, Target>,
  files: FileChanges | ((name: string) => FileChanges),
): MatrixDiff {
  const diff: MatrixDiff = { base, added: [], removed: [], changed: [] };
  for (const [name, t] of after) {
    const b = before.get(name);
    if (!b) {
      diff.added.push(name);
      continue;
    }
    const changes = targetChanges(b, t, typeof files === 'function' ? files(name) : files);
    if (changes.length > 0) diff.changed.push({ name, changes });
  }
  for (const name of before.keys()) if (!after.has(name)) diff.removed.push(name);
  diff.added.sort();
  diff.removed.sort();
  diff.changed.sort((a, b) => (a.name < b.name ? -1 : 1));
  return diff;
}

export function renderDiff(d: MatrixDiff): string[] {
  const lines: string[] = [];
  for (const n of d.added) lines.push(`+ ${n}`);
  for (const n of d.removed) lines.push(`- ${n}`);
  for (const c of d.changed) {
    lines.push(`~ ${c.name}`);
    for (const ch of c.changes) lines.push(`    ${ch.input}: ${ch.detail}`);
  }
  const total = d.added.length + d.removed.length + d.changed.length;
  lines.push(
    total === 0
      ? `no differences from ${d.base}`
      : `${total} target${total === 1 ? '' : 's'} differ from ${d.base}: ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed`,
  );
  return lines;
}
