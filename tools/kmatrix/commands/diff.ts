import { join, resolve } from 'node:path';
import { renderError } from '../errors.ts';
import { diffMatrix, renderDiff } from '../matrix/diff.ts';
import { fileChanges, resolveRef, targetsAt } from '../matrix/git-state.ts';
import { existingTargetFiles } from '../matrix/sync.ts';
import { isRemoved, loadTargetFile, type Target } from '../matrix/target.ts';
import { dockerfileOf, loadAllToolchains } from '../toolchain/spec.ts';
import { parse, type Command } from './command.ts';

const help = `Usage: npx kmatrix diff [--base REF] [--json]

Compares the targets in targets/ (as \`kmatrix gen\` left them, committed or not) with the
matrix at REF — the last published state — and prints each target added (+), removed (-) or
changed (~), and for a changed one which build input changed: headers (which package, old and
new SHA256), toolchain (image digest, gcc, its files), flags (make arguments, KCFLAGS,
environment), source (the driver's files) or build-code (the plugin and build library, which
every target hashes). These are exactly the inputs Nx hashes, so after committing,
\`npx nx affected -t build-driver --base=REF\` runs the added and changed targets; a removed
target has no project left to run.

Exit code: 0 no differences, 1 differences, 2 error (like diff(1)).

Options:
  --base REF   git branch, tag or commit of the last published state (default: HEAD)
  --json       print the diff as JSON on stdout: {base, added, removed, changed: [{name, changes: [{input, detail}]}]}
  -h, --help   show this help
`;

export const diffCommand: Command = {
  name: 'diff',
  summary: 'what changed in the matrix since the last published state, and why',
  help,
  async run(argv) {
    const { values } = parse('diff', argv, { base: { type: 'string', default: 'HEAD' }, json: { type: 'boolean', default: false } });
    try {
      const root = resolve('.');
      const commit = await resolveRef(root, values.base);
      const before = await targetsAt(root, commit);
      const after = new Map<string, Target>();
      for (const f of await existingTargetFiles(root)) {
        const t = await loadTargetFile(join(root, f));
        if (!isRemoved(t)) after.set(t.name, t);
      }
      const dockerfiles = new Map((await loadAllToolchains(root)).map((t) => [t.name, dockerfileOf(t.name, t.spec)]));
      const files = await fileChanges(root, commit, after.values(), dockerfiles);
      const diff = diffMatrix(values.base, before, after, files);
      if (values.json) process.stdout.write(`${JSON.stringify(diff, null, 2)}\n`);
      else process.stdout.write(`${renderDiff(diff).join('\n')}\n`);
      return diff.added.length + diff.removed.length + diff.changed.length === 0 ? 0 : 1;
    } catch (error) {
      // 1 means "differences" here, so failures exit 2.
      process.stderr.write(`${renderError(error)}\n`);
      return 2;
    }
  },
};
