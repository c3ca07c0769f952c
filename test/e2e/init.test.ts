/**
 * Adopting kmatrix in an existing driver repository: `kmatrix init` in a fresh `git init` holding
 * a driver writes the workspace and says what it wrote; run again, it changes nothing; then the
 * user crawls, pins the toolchain, generates and builds the driver end to end with Nx.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expectOk, repoRoot, testStore } from '../support/workspace.ts';

test('kmatrix init adopts a driver repository idempotently, and its driver builds end to end', {
  timeout: 15 * 60_000,
}, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-init-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Someone's driver repository: the sources in a folder of their own, a README, nothing else.
  await cp(join(repoRoot, 'drivers/kmx-echo'), join(dir, 'echo-driver'), { recursive: true });
  await execa('sh', ['-c', 'echo "# my driver" > README.md && git init -q -b main && git add -A'], { cwd: dir });
  const env = {
    ...process.env,
    KMATRIX_STORE: testStore,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    FORCE_COLOR: '0',
  };
  const run = async (cmd: string, args: string[]) => {
    const r = await execa(cmd, args, { cwd: dir, env, reject: false, all: true, stdin: 'ignore' });
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, all: r.all };
  };
  const commit = (message: string) =>
    run('sh', ['-c', `git add -A && git -c user.name=t -c user.email=t@example.invalid commit -qm '${message}'`]);

  // Typed in the driver's own folder, naming it: the repository's top is the workspace.
  const inDriver = await execa(process.execPath, [join(repoRoot, 'tools/kmatrix/cli.ts'), 'init', '--driver', '.'], {
    cwd: join(dir, 'echo-driver'),
    env,
    reject: false,
    all: true,
  });
  const first = expectOk(
    { exitCode: inDriver.exitCode ?? -1, stdout: inDriver.stdout, stderr: inDriver.stderr, all: inDriver.all ?? '' },
    'init',
  );
  for (const line of [
    /^created {2}tools\/kmatrix\/ \(\d+ files\)$/m,
    /^created {2}plugins\/kmatrix\/ \(\d+ files\)$/m,
    /^created {4}support-matrix\.json$/m,
    /^created {4}nx\.json$/m,
    /^created {4}toolchains\/debian-bookworm\/toolchain\.lock\.json$/m,
    /^created {4}\.github\/workflows\/build\.yml$/m,
    /^created {4}\.gitignore$/m,
  ])
    assert.match(first.stdout, line);
  const policy = JSON.parse(await readFile(join(dir, 'support-matrix.json'), 'utf8'));
  assert.deepEqual(policy.drivers, { 'echo-driver': { path: 'echo-driver', modules: ['kmx_echo'] } });
  assert.equal(policy.matrix.length, 1);
  const nxJson = JSON.parse(await readFile(join(dir, 'nx.json'), 'utf8'));
  assert.equal(nxJson.plugins[0].plugin, './plugins/kmatrix');
  assert.match(await readFile(join(dir, '.gitignore'), 'utf8'), /^dist\/$/m);
  await commit('kmatrix init');

  // `npm install` as the user runs it (from npm's cache where it can), then init again, now the
  // workspace's own copy: every file unchanged, the tree exactly as committed but the new lock.
  expectOk(await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund']), 'npm install');
  assert.equal((await run('git', ['status', '--porcelain'])).stdout, '?? package-lock.json');
  await commit('npm install');
  const again = expectOk(
    await run(process.execPath, [join(dir, 'tools/kmatrix/cli.ts'), 'init', '--json']),
    'init again',
  );
  const doc = JSON.parse(again.stdout);
  assert.ok(doc.result.written.length > 20);
  assert.deepEqual(
    doc.result.written.filter((w: { action: string }) => w.action !== 'unchanged'),
    [],
    'a second init changes nothing',
  );
  assert.equal((await run('git', ['status', '--porcelain'])).stdout, '');
  // `npx kmatrix` is this workspace's own copy (package.json's bin), never a registry package.
  const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));
  assert.equal(expectOk(await run('npx', ['--no-install', 'kmatrix', '--version']), 'npx kmatrix').stdout, version);

  // From here the user's own workspace: crawl, toolchain, gen, build.
  const kmatrix = (...args: string[]) => run(process.execPath, [join(dir, 'tools/kmatrix/cli.ts'), ...args]);
  expectOk(await kmatrix('crawl', 'deb'), 'crawl');
  expectOk(await kmatrix('toolchain', 'build', 'debian-bookworm'), 'toolchain build');
  expectOk(await kmatrix('gen'), 'gen');
  await commit('targets');
  const nx = (...args: string[]) => run(process.execPath, [join(dir, 'node_modules/nx/dist/bin/nx.js'), ...args]);
  const projects = JSON.parse(
    expectOk(await nx('show', 'projects', '--with-target', 'build-driver', '--json'), 'nx show projects').stdout,
  ) as string[];
  assert.ok(
    projects.length >= 1 && projects.every((p) => p.startsWith('echo-driver--debian-bookworm--')),
    projects.join(),
  );
  expectOk(await nx('run-many', '-t', 'build-driver', '--output-style=static'), 'nx run-many -t build-driver');
  for (const p of projects) {
    const [, distro, release, arch] = p.split('--') as [string, string, string, string];
    const ko = join(dir, 'dist/targets/echo-driver', distro, release, arch, 'kmx_echo.ko');
    const { stdout } = await execa('modinfo', ['-F', 'vermagic', ko]);
    assert.equal(stdout.split(' ')[0], release);
  }
});
