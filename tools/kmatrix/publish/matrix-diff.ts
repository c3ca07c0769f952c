/**
 * `kmatrix diff`: the matrix in targets/ against the last published state, a git ref or an
 * artifact store's index, with each changed target's changed inputs.
 */
import { join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { isRemoved, loadTargetFile, type Target } from '../model/target.ts';
import { diffMatrix, type FileChanges, type MatrixDiff } from '../gen/diff.ts';
import { fileChanges, resolveRef, targetsAt } from '../gen/git-state.ts';
import { existingTargetFiles } from '../gen/sync.ts';
import { isBuildCode } from '../compile/inputs.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { loadIndex } from './published-index.ts';

/** The targets as `kmatrix gen` left them (committed or not). */
async function current(root: string): Promise<{ after: Map<string, Target> }> {
  const after = new Map<string, Target>();
  for (const f of await existingTargetFiles(root)) {
    const t = await loadTargetFile(join(root, f));
    if (!isRemoved(t)) after.set(t.name, t);
  }
  return { after };
}

/** Against the matrix committed at `base`. */
export async function diffWithBase(root: string, base: string): Promise<MatrixDiff> {
  const { after } = await current(root);
  const commit = await resolveRef(root, base);
  return diffMatrix(
    base,
    await targetsAt(root, commit),
    after,
    await fileChanges(root, commit, after.values(), isBuildCode),
  );
}

/** Against what the store has published: each target compared with the commit it was published from. */
export async function diffWithPublished(root: string, store: ArtifactStore): Promise<MatrixDiff> {
  const { after } = await current(root);
  const index = await loadIndex(store);
  const before = new Map(Object.entries(index.targets).map(([name, e]) => [name, e.target]));
  const byRevision = new Map<string, FileChanges>();
  for (const revision of new Set(Object.values(index.targets).map((e) => e.revision))) {
    const commit = await resolveRef(root, revision).catch(() => {
      throw new KmatrixError(
        `the published state was built at ${revision.slice(0, 12)}, which this clone does not have`,
        {
          stage: 'diff',
          remedy:
            'fetch the full history (git fetch --unshallow; in GitHub Actions: actions/checkout with fetch-depth: 0)',
        },
      );
    });
    byRevision.set(revision, await fileChanges(root, commit, after.values(), isBuildCode));
  }
  return diffMatrix(store.description, before, after, (name) => byRevision.get(index.targets[name]!.revision)!);
}
