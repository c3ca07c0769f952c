import { resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { KmatrixError } from '../core/errors.ts';
import { collectReport } from '../report/data.ts';
import { renderHtml, renderMarkdown } from '../report/html.ts';
import { defineCommand, log } from './command.ts';
import { existsSync } from 'node:fs';
import { defaultPublishStore, openArtifactStore } from '../publish/open-artifact-store.ts';
import { loadIndex } from '../publish/published-index.ts';

const about = `The matrix at a glance, from targets/, the outputs in dist/ and the last build run
(dist/kmatrix/last-run.json, written after every nx build-driver run) and gen's exclusions
(dist/kmatrix/gen-report.json). At least one of the outputs below.

Each output begins with the breakage windows: per driver × distro family × arch, the kernel
range that builds and loads (from the lowest to the highest kernel whose build succeeded and
whose boot test, where one ran, loaded the modules), the first kernel that fails with its first
error, and the targets failing now that the last published state had published (--published,
default $KMATRIX_PUBLISH_STORE, else dist/published when it exists).
`;

/** The targets the last published state holds: --published, else the default store if it exists. */
async function publishedState(given: string | undefined): Promise<{ names: Set<string>; from: string } | undefined> {
  const location = given ?? defaultPublishStore();
  // Nothing published here yet (the default folder does not exist): nothing is newly failing.
  if (!given && !process.env.KMATRIX_PUBLISH_STORE && !existsSync(location)) return undefined;
  try {
    const index = await loadIndex(await openArtifactStore(location));
    return { names: new Set(Object.keys(index.targets)), from: location };
  } catch (error) {
    // Asked for by name: its failure is the command's. Found by default: the report goes on without it.
    if (given) throw error;
    log(
      `warning: cannot read the published state at ${location} (${(error as Error).message}); no "newly failing" column`,
    );
    return undefined;
  }
}

export const reportCommand = defineCommand({
  name: 'report',
  summary: 'write the matrix report (HTML, JSON, Markdown)',
  about,
  options: {
    out: {
      type: 'string',
      path: true,
      value: 'FILE.html',
      help: `a self-contained page (no network at view time): per driver a grid of
        kernels × (distro, arch), each cell built / cached / failed / skipped /
        excluded / not built, with the module sha256 and a link to its log;
        filters by distro, arch and status; counts on top`,
    },
    json: { type: 'string', path: true, value: 'FILE', help: 'the same data as JSON ("-" for stdout)' },
    published: {
      type: 'string',
      path: true,
      value: 'LOC',
      help: 'the artifact store whose index is the last published state (directory or s3://bucket/prefix)',
    },
    markdown: {
      type: 'string',
      path: true,
      value: 'FILE',
      help: `counts per distro × arch and the failures, fit for a CI job summary
        (e.g. --markdown "$GITHUB_STEP_SUMMARY")`,
    },
  },
  async run({ values }) {
    if (!values.out && !values.json && !values.markdown) {
      throw new KmatrixError('nothing to write', {
        stage: 'usage',
        remedy: 'pass --out report.html, --json FILE or --markdown FILE',
      });
    }
    const root = resolve('.');
    const data = await collectReport(root, await publishedState(values.published));
    if (values.out) {
      const out = resolve(values.out);
      await writeFileAtomic(out, renderHtml(data, root, out));
      log(`wrote ${values.out} (${data.cells.length} targets)`);
    }
    if (values.json === '-') process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else if (values.json) await writeFileAtomic(resolve(values.json), `${JSON.stringify(data, null, 2)}\n`);
    if (values.markdown) await writeFileAtomic(resolve(values.markdown), renderMarkdown(data));
    return 0;
  },
});
