/**
 * Scripting kmatrix: `--version`, one JSON document on stdout under `--json` (the same shape for
 * every command, errors included), and every command working from any folder of the workspace,
 * with the paths a user types read from where they typed them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { createWorkspace, repoRoot } from '../support/workspace.ts';

test('from a subfolder, scripts get --version and one JSON document per command, errors included', async (t) => {
  const ws = await createWorkspace('kmatrix-scripting-');
  t.after(() => ws.remove());
  await cp(join(repoRoot, 'targets'), join(ws.dir, 'targets'), { recursive: true });
  await ws.commitAll('the committed targets');
  const sub = join(ws.dir, 'drivers', 'kmx-echo');
  const kmatrix = (args: string[]) =>
    execa(process.execPath, [join(ws.dir, 'tools/kmatrix/cli.ts'), ...args], {
      cwd: sub,
      env: ws.env,
      extendEnv: false,
      reject: false,
    });
  const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));

  assert.equal((await kmatrix(['--version'])).stdout, version);

  // gen finds the workspace above the folder it is run in; --json: stdout is the document alone.
  const dry = await kmatrix(['gen', '--dry-run', '--json']);
  assert.equal(dry.exitCode, 0, dry.stderr);
  const doc = JSON.parse(dry.stdout);
  assert.equal(doc.kmatrix, version);
  assert.equal(doc.command, 'gen');
  assert.equal(doc.ok, true);
  assert.equal(doc.exitCode, 0);
  assert.equal(doc.result.dryRun, true);
  assert.ok(doc.result.targets > 0);
  assert.equal(doc.result.unchanged, doc.result.targets, 'the committed targets are current');
  assert.deepEqual([doc.result.added, doc.result.changed, doc.result.removed], [[], [], []]);
  assert.match(dry.stderr, /targets: 0 would be added/, 'what people read goes to stderr');

  const check = JSON.parse((await kmatrix(['gen', '--check', '--json'])).stdout);
  assert.deepEqual([check.ok, check.result.checked, check.result.stale], [true, doc.result.targets, []]);

  // A path typed in the subfolder is read from there; a failure is a document too.
  const missing = await kmatrix(['verify', 'nowhere.ko', '--json']);
  assert.equal(missing.exitCode, 1);
  const failed = JSON.parse(missing.stdout);
  assert.deepEqual(
    { ok: failed.ok, exitCode: failed.exitCode, stage: failed.error.stage },
    { ok: false, exitCode: 1, stage: 'verify' },
  );
  assert.equal(failed.error.message, `cannot read ${join(sub, 'nowhere.ko')} (ENOENT)`);
  assert.match(failed.error.remedy, /module file/);
  assert.match(missing.stderr, /kmatrix: cannot read/, 'and people still read the error');

  await ws.write('drivers/kmx-echo/my-policy.json', '{"drivers": {}, "matrix": []}\n');
  const policy = await kmatrix(['gen', '--policy', 'my-policy.json', '--dry-run', '--json']);
  const bad = JSON.parse(policy.stdout);
  assert.equal(bad.error.stage, 'policy');
  assert.ok(
    bad.error.problems.some((p: string) => p.startsWith(`${join(sub, 'my-policy.json')}: matrix`)),
    bad.error.problems.join('\n'),
  );

  const usage = await kmatrix(['gen', '--only', 'nonsense', '--json']);
  assert.equal(usage.exitCode, 2);
  assert.deepEqual(JSON.parse(usage.stdout).error.stage, 'usage');

  // Outside any workspace nothing is found above, and the command says what it could not read.
  const outside = await execa(process.execPath, [join(ws.dir, 'tools/kmatrix/cli.ts'), 'gen', '--dry-run'], {
    cwd: '/',
    env: ws.env,
    extendEnv: false,
    reject: false,
  });
  assert.equal(outside.exitCode, 1);
  assert.match(outside.stderr, /support-matrix\.json/);
});
