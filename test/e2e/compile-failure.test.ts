/**
 * A driver that does not compile: the user sees the compiler's first error lines and where the
 * full log is, the run fails, and no .ko (partial or stale) appears in the outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mkdir, rm } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { launchChromium } from '../support/browser.ts';
import { createWorkspace, expectOk, preparePipeline, repoRoot, writeTarget } from '../support/workspace.ts';

test('a compile error fails the build with the first error lines and leaves no .ko behind', {
  timeout: 10 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-broken-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const all: string[] = JSON.parse(
    (await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json'])).stdout,
  );

  // One target's header package does not match its recorded SHA256 (a mirror problem, not the
  // driver's): that target fails as infrastructure, every other one is built, and the run ends
  // with the summary per distro × arch.
  const bad = all.find((n) => n.includes('cloud-amd64') && n.includes('--6.1.0-'))!;
  const badFile = join('targets', ...bad.split('--'), 'target.json');
  const tampered = JSON.parse(await ws.read(badFile));
  tampered.headers.find((h: { role: string }) => h.role === 'flavour').sha256 = '0'.repeat(64);
  await writeTarget(ws, badFile, tampered);
  await ws.commitAll('a header digest the mirror does not serve');
  const mixed = await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']);
  assert.notEqual(mixed.exitCode, 0);
  assert.match(
    mixed.all,
    new RegExp(
      `kmatrix: build-driver summary, ${all.length} targets\n  distro × arch +built  cached  failed  skipped\n  debian-bookworm x86_64 +${all.length - 1} +0 +1 +0`,
    ),
  );
  assert.match(
    mixed.all,
    new RegExp(
      `^    ${bad.replace(/[.+]/g, '\\$&')}: infrastructure \\(headers\\): SHA256 mismatch for linux-headers-`,
      'm',
    ),
  );
  const lastRun = JSON.parse(await ws.read('dist/kmatrix/last-run.json'));
  assert.deepEqual(
    lastRun.targets.map((t: { outcome: string }) => t.outcome).sort(),
    [...Array(all.length - 1).fill('built'), 'failed'].sort(),
  );
  // The report of that run: built cells carry their module's sha256, the failed one its reason.
  const mixedReport = JSON.parse(expectOk(await ws.kmatrix(['report', '--json', '-']), 'report --json').stdout);
  assert.deepEqual(mixedReport.counts, {
    built: all.length - 1,
    cached: 0,
    failed: 1,
    skipped: 0,
    excluded: 0,
    'not built': 0,
  });
  const builtCell = mixedReport.cells.find((c: { status: string }) => c.status === 'built');
  const buildJson = JSON.parse(await ws.read(join('dist/targets', ...builtCell.target.split('--'), 'build.json')));
  assert.equal(builtCell.modules[0].sha256, buildJson.outputs[0].sha256);
  assert.match(mixedReport.cells.find((c: { target: string }) => c.target === bad).detail, /SHA256 mismatch/);
  // Then a run of another subset: the report still shows every target's own last result, and
  // "failed" still counts the target that is failing now.
  const other = all.find((n) => n !== bad)!;
  expectOk(await ws.nx(['run-many', '-t', 'build-driver', `--projects=${other}`, '--output-style=static']), 'a subset');
  const laterReport = JSON.parse(
    expectOk(await ws.kmatrix(['report', '--json', '-']), 'report after the subset').stdout,
  );
  assert.deepEqual(laterReport.counts, {
    built: all.length - 2,
    cached: 1,
    failed: 1,
    skipped: 0,
    excluded: 0,
    'not built': 0,
  });
  const stillFailing = laterReport.cells.find((c: { target: string }) => c.target === bad);
  assert.equal(stillFailing.status, 'failed');
  assert.match(stillFailing.detail, /SHA256 mismatch/);
  assert.equal(laterReport.cells.find((c: { target: string }) => c.target === other).status, 'cached');
  await ws.git(['revert', '--no-edit', 'HEAD']);
  await rm(join(ws.dir, 'dist', 'targets'), { recursive: true, force: true }); // what follows must produce no .ko at all

  const source = 'drivers/kmx-echo/kmx_echo_dev.c';
  await ws.write(source, (await ws.read(source)).replace('e->len = n;', 'e->len = n +;'));
  await ws.commitAll('break the driver');

  const names: string[] = JSON.parse(
    (await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json'])).stdout,
  );
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
  for (const n of names)
    assert.ok(
      failed.includes(`${n}:build-driver`),
      `${n} is reported failed (one broken target does not stop the others)`,
    );
  for (const n of names)
    assert.ok(!existsSync(join(ws.dir, 'dist', 'targets', ...n.split('--'), 'kmx_echo.ko')), `${n} has no .ko`);
  // The summary blames the driver, with the compiler's first error and the log of each target.
  assert.match(viaNx.all, new RegExp(`debian-bookworm x86_64 +0 +0 +${names.length} +0`));
  const [driver, distro, release, arch] = name.split('--') as [string, string, string, string];
  assert.match(
    viaNx.all,
    new RegExp(
      `^    ${name.replace(/[.+]/g, '\\$&')}: compile error: .*kmx_echo_dev\\.c:\\d+:\\d+: error: expected expression`,
      'm',
    ),
  );
  assert.match(
    viaNx.all,
    new RegExp(
      `^      log: dist/targets/${driver}/${distro}/${release.replace(/[.+]/g, '\\$&')}/${arch}\\.build\\.log$`,
      'm',
    ),
  );

  // The report, in a real browser: counts, a working filter, a failed cell that links to its log.
  expectOk(
    await ws.kmatrix(['report', '--out', 'dist/report/index.html', '--markdown', 'dist/report/summary.md']),
    'kmatrix report',
  );
  assert.match(
    await ws.read('dist/report/summary.md'),
    new RegExp(`\\| debian-bookworm \\| x86_64 \\| 0 \\| 0 \\| ${names.length} \\|`),
  );
  assert.match(await ws.read('dist/report/summary.md'), /^### Failed$/m);
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(pathToFileURL(join(ws.dir, 'dist/report/index.html')).href);
  assert.match(await page.locator('#counts').innerText(), new RegExp(`failed: ${names.length}\\b`));
  await page.selectOption('select[name=status]', 'built');
  assert.equal(await page.locator('#shown').innerText(), '0 shown');
  await page.selectOption('select[name=status]', 'failed');
  assert.equal(await page.locator('#shown').innerText(), `${names.length} shown`);
  await mkdir(join(repoRoot, 'test/artifacts'), { recursive: true });
  await page.screenshot({ path: join(repoRoot, 'test/artifacts/report-failed.png'), fullPage: true });
  await page.locator(`td[data-target="${name}"] a.log`).click();
  assert.match(await page.locator('body').innerText(), /error: expected expression/);
});
