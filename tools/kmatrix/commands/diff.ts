import { resolve } from 'node:path';
import { KmatrixError, renderError } from '../core/errors.ts';
import { renderDiff } from '../gen/diff.ts';
import { diffWithBase, diffWithPublished } from '../publish/matrix-diff.ts';
import { openArtifactStore } from '../publish/open-artifact-store.ts';
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
      path: true,
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
      const diff = values.published
        ? await diffWithPublished(root, await openArtifactStore(values.published))
        : await diffWithBase(root, values.base ?? 'HEAD');
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
