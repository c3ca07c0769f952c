/**
 * A driver that does not compile: the user sees the compiler's first error lines and where the
 * full log is, the run fails, and no .ko (partial or stale) appears in the outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createWorkspace, preparePipeline } from '../support/workspace.ts';

test('a compile error fails the build with the first error lines and leaves no .ko behind', { timeout: 10 * 60_000 }, async (t) => {
  const ws = await createWorkspace('kmatrix-broken-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const source = 'drivers/kmx-echo/kmx_echo_dev.c';
  await ws.write(source, (await ws.read(source)).replace('e->len = n;', 'e->len = n +;'));
  await ws.commitAll('break the driver');

  const names: string[] = JSON.parse((await ws.nx(['show', 'projects', '--json'])).stdout);
  const name = names.find((n) => n.includes('--6.1.0-'))!;
  const outDir = join(ws.dir, 'dist', 'targets', ...name.split('--'));

  const direct = await ws.kmatrix(['build', name]);
  assert.equal(direct.exitCode, 1);
  assert.match(direct.stderr, new RegExp(`kmatrix: ${name.replace(/[+.]/g, '\\$&')}: make exited with status 2`));
  assert.match(direct.stderr, /^ {2}- .*kmx_echo_dev\.c:\d+:\d+: error: expected expression/m);
  const logLine = direct.stderr.match(/full log: (\S+)/);
  assert.ok(logLine && existsSync(logLine[1]!), 'the full log is kept where the message says');
  assert.ok(!existsSync(outDir), 'no output folder, so no partial .ko');

  const viaNx = await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']);
  assert.notEqual(viaNx.exitCode, 0);
  assert.match(viaNx.all, /error: expected expression/);
  assert.match(viaNx.all, /Running target build-driver for \d+ projects failed/);
  const failed = viaNx.all.slice(viaNx.all.indexOf('Failed tasks:'));
  for (const n of names) assert.ok(failed.includes(`${n}:build-driver`), `${n} is reported failed (one broken target does not stop the others)`);
  for (const n of names) assert.ok(!existsSync(join(ws.dir, 'dist', 'targets', ...n.split('--'), 'kmx_echo.ko')), `${n} has no .ko`);
});
