/**
 * `kmatrix gen --check`: every committed target.json against what this code renders from its
 * spec. Run in CI, it turns "the code would now run something else than the recipe that keys the
 * cache" into a failure that names each target and field, instead of a silent stale key.
 */
import { join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { loadGuestLock } from '../model/guest-lock.ts';
import { isRemoved, loadTargetFile } from '../model/target.ts';
import { bootRecipeDifferences, buildRecipeDifferences, type FieldDifference } from '../recipe/check.ts';
import { existingTargetFiles } from './sync.ts';

export interface StaleTarget {
  name: string;
  differences: FieldDifference[];
}

/** Targets whose committed recipes differ from what this code renders, and how many were checked. */
export async function staleRecipes(root: string): Promise<{ checked: number; stale: StaleTarget[] }> {
  const lock = await loadGuestLock(root);
  const stale: StaleTarget[] = [];
  const problems: string[] = [];
  let checked = 0;
  for (const file of await existingTargetFiles(root)) {
    const t = await loadTargetFile(join(root, file)).catch((error: unknown) => {
      problems.push(...(error instanceof KmatrixError && error.problems.length ? error.problems : [String(error)]));
      return undefined;
    });
    if (!t || isRemoved(t)) continue;
    checked++;
    const differences = [...buildRecipeDifferences(t), ...bootRecipeDifferences(t, lock)];
    if (differences.length > 0) stale.push({ name: t.name, differences });
  }
  if (problems.length > 0) {
    throw new KmatrixError(`${problems.length} target file${problems.length === 1 ? ' is' : 's are'} not valid`, {
      stage: 'target',
      problems: problems.slice(0, 20),
      remedy: 'run `npx kmatrix gen` to regenerate targets/ and commit it',
    });
  }
  return { checked, stale };
}
