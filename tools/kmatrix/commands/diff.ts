import { join, resolve } from 'node:path';
import { KmatrixError, renderError } from '../core/errors.ts';
import { diffMatrix, renderDiff, type FileChanges, type MatrixDiff } from '../gen/diff.ts';
import { openArtifactStore } from '../publish/open-artifact-store.ts';
import { loadIndex } from '../publish/published-index.ts';
import { isBuildCode } from '../compile/inputs.ts';
import { fileChanges, resolveRef, targetsAt } from '../gen/git-state.ts';
import { existingTargetFiles } from '../gen/sync.ts';
import { isRemoved, loadTargetFile, type Target } from '../model/target.ts';
import { dockerfileOf, loadAllToolchains } from '../model/toolchain.ts';
import { defineCommand } from './command.ts';

const about = `Compares the targets in targets/ (as \`kmatrix gen\` left them, committed or not) with the
matrix at REF — the last published state — and prints each target added (+), removed (-) or
changed (~), and for a changed one which build input changed: headers (which package, old and
new SHA256), toolchain (image digest, gcc, its files), flags (make arguments, KCFLAGS,
environment), source (the driver's files) or build-code (the plugin and build library, which
every target hashes). These are exactly the inputs Nx hashes, so after committing,
\`npx nx affected -t build-driver --base=REF\` runs the added and changed targets; a removed
target has no project left to run. --base and --published are two baselines: pass one.

Exit code: 0 no differences, 1 differences, 2 error (like diff(1)).
`;

export const diffCommand = defineCommand({
  name: 'diff',
  summary: 'what changed in the matrix since the last published state, and why',
  about,
  options: {
    base: {
      type: 'string',
      value: 'REF',
      help: 'git branch, tag or commit of the last published state (default: HEAD)',
    },
    published: {
      type: 'string',
      value: 'LOC',
      help: `compare with what the artifact store at LOC (directory or s3://bucket/prefix,
        see \`kmatrix publish\`) has published: its index holds each target's target.json
        and the commit it was published from (which must be in this clone, e.g.
        actions/checkout with fetch-depth: 0). A target not published yet is added.`,
    },
    json: {
      type: 'boolean',
      default: false,
      help: 'print the diff as JSON on stdout: {base, added, removed, changed: [{name, changes: [{input, detail}]}]}',
    },
  },
  async run({ values }) {
    try {
      if (values.base && values.published)
        throw new KmatrixError('--base and --published are two different baselines; pass one', {
          stage: 'usage',
          remedy: 'see `npx kmatrix diff --help`',
        });
      const root = resolve('.');
      const after = new Map<string, Target>();
      for (const f of await existingTargetFiles(root)) {
        const t = await loadTargetFile(join(root, f));
        if (!isRemoved(t)) after.set(t.name, t);
      }
      const dockerfiles = new Map((await loadAllToolchains(root)).map((t) => [t.name, dockerfileOf(t.name, t.spec)]));
      let diff: MatrixDiff;
      if (values.published) {
        const store = await openArtifactStore(values.published);
        const index = await loadIndex(store);
        const before = new Map(Object.entries(index.targets).map(([name, e]) => [name, e.target]));
        // Targets are published from the commit they were built at: compare files per commit.
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
          byRevision.set(revision, await fileChanges(root, commit, after.values(), dockerfiles, isBuildCode));
        }
        diff = diffMatrix(store.description, before, after, (name) => byRevision.get(index.targets[name]!.revision)!);
      } else {
        const base = values.base ?? 'HEAD';
        const commit = await resolveRef(root, base);
        diff = diffMatrix(
          base,
          await targetsAt(root, commit),
          after,
          await fileChanges(root, commit, after.values(), dockerfiles, isBuildCode),
        );
      }
      if (values.json) process.stdout.write(`${JSON.stringify(diff, null, 2)}\n`);
      else process.stdout.write(`${renderDiff(diff).join('\n')}\n`);
      return diff.added.length + diff.removed.length + diff.changed.length === 0 ? 0 : 1;
    } catch (error) {
      // 1 means "differences" here, so failures exit 2.
      process.stderr.write(`${renderError(error)}\n`);
      return 2;
    }
  },
});
