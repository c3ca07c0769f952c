/**
 * Staleness: a target.json's recipes against what this code renders from its spec. gen writes
 * recipes; the build and the boot test refuse a target whose recipes this code would render
 * differently (its cache key would not be what runs), and `kmatrix gen --check` lists them all.
 */
import { KmatrixError } from '../core/errors.ts';
import type { GuestLock } from '../model/guest-lock.ts';
import type { Target, TargetSpec } from '../model/target.ts';
import { renderBuildRecipe } from './build.ts';
import { renderBootRecipe } from './guest.ts';

/** One field that differs: its path in target.json (`recipe.argv[4]`), and both values as JSON. */
export interface FieldDifference {
  field: string;
  committed: string;
  rendered: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const json = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));

/** Every leaf where two JSON values differ, by path; arrays of another length differ as a whole. */
export function fieldDifferences(a: unknown, b: unknown, path: string): FieldDifference[] {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => fieldDifferences(a[k], b[k], `${path}.${k}`));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length)
    return a.flatMap((x, i) => fieldDifferences(x, b[i], `${path}[${i}]`));
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ field: path, committed: json(a), rendered: json(b) }];
}

/** What the current code renders for a spec: target.json as gen writes it. */
export function withRecipes(spec: TargetSpec, lock: GuestLock): Target {
  return { ...spec, recipe: renderBuildRecipe(spec), boot: renderBootRecipe(spec, lock) };
}

export function buildRecipeDifferences(target: Target): FieldDifference[] {
  return fieldDifferences(target.recipe, renderBuildRecipe(target), 'recipe');
}

export function bootRecipeDifferences(target: Target, lock: GuestLock): FieldDifference[] {
  return fieldDifferences(target.boot, renderBootRecipe(target, lock), 'boot');
}

/** The way one difference reads, e.g. `recipe.argv[4]: "V=0" → "V=1"`. */
export const renderDifference = (d: FieldDifference) => `${d.field}: ${d.committed} → ${d.rendered}`;

/** A target whose committed recipe is not what this code renders: never built or booted as it is. */
export class StaleRecipeError extends KmatrixError {
  readonly differences: FieldDifference[];
  constructor(target: string, differences: FieldDifference[]) {
    super(
      `target.json's ${differences[0]!.field.startsWith('boot') ? 'boot' : 'build'} recipe is not what this version of kmatrix renders`,
      {
        stage: 'target',
        target,
        problems: differences.slice(0, 20).map(renderDifference),
        remedy:
          'run `npx kmatrix gen` (it re-renders the recipes) and commit targets/; `npx kmatrix gen --check` lists every stale target',
      },
    );
    this.name = 'StaleRecipeError';
    this.differences = differences;
  }
}

/** Throws StaleRecipeError unless the target's build recipe is current. */
export function requireCurrentBuildRecipe(target: Target): void {
  const differences = buildRecipeDifferences(target);
  if (differences.length > 0) throw new StaleRecipeError(target.name, differences);
}

export function requireCurrentBootRecipe(target: Target, lock: GuestLock): void {
  const differences = bootRecipeDifferences(target, lock);
  if (differences.length > 0) throw new StaleRecipeError(target.name, differences);
}
