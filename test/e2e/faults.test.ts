/**
 * Builds killed midway — the container by SIGKILL, nx by Ctrl-C or by SIGKILL — leave no partial
 * .ko and no container behind; the next run builds cleanly and clears what the interrupted one left.
 * (Half-written store entries are covered in bad-input.test.ts: downloads go to temp names.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createWorkspace, expectOk, preparePipeline, type Workspace, nxBin } from '../support/workspace.ts';

/** Starts `nx run TARGET:build-driver`; `running` resolves with the build container's id as soon as it exists. */
function startBuild(ws: Workspace, name: string, outDir: string) {
  const child = execa(
    process.execPath,
    [nxBin, 'run', `${name}:build-driver`, '--skip-nx-cache', '--output-style=static'],
    {
      cwd: ws.dir,
      env: ws.env,
      extendEnv: false,
      reject: false,
      all: true,
      detached: true,
      stdin: 'ignore',
    },
  );
  let out = '';
  child.all!.on('data', (b: Buffer) => (out += b.toString()));
  let done = false;
  void child.then(() => (done = true));
  const running = (async () => {
    while (!done) {
      const [id] = await containersOf(outDir);
      if (id) return id;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the build ended before its container was seen:\n${out}`);
  })();
  return { child, running, output: () => out };
}

async function containersOf(outDir: string): Promise<string[]> {
  const { stdout } = await execa('docker', ['ps', '-aq', '--filter', `label=kmatrix.out=${outDir}`]);
  return stdout.split('\n').filter(Boolean);
}

const scratchOf = (outDir: string) =>
  existsSync(join(outDir, '..')) ? readdirSync(join(outDir, '..')).filter((f) => f.includes('.work-')) : [];

function assertNothingLeft(outDir: string, scratchToo = true): void {
  assert.ok(!existsSync(join(outDir, 'kmx_echo.ko')), 'no .ko, partial or whole');
  if (scratchToo) assert.deepEqual(scratchOf(outDir), [], 'no scratch folder');
}

test('a build whose container is SIGKILLed, or whose nx gets Ctrl-C or SIGKILL, leaves nothing behind and rebuilds cleanly', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-faults-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const name = (
    JSON.parse(
      expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
    ) as string[]
  ).find((n) => n.includes('--6.12.'))!;
  const outDir = join(ws.dir, 'dist/targets', ...name.split('--'));

  // 1. The container dies (OOM killer, a runner's reaper): the task fails, nothing is kept.
  const killed = startBuild(ws, name, outDir);
  await execa('docker', ['kill', await killed.running]);
  const r1 = await killed.child;
  assert.notEqual(r1.exitCode, 0);
  assert.match(killed.output(), /make exited with status 137/);
  assertNothingLeft(outDir);
  assert.deepEqual(await containersOf(outDir), [], 'the dead container was removed');

  // 2. The user presses Ctrl-C: nx and the executor stop, and so does the container.
  const interrupted = startBuild(ws, name, outDir);
  await interrupted.running;
  process.kill(-interrupted.child.pid!, 'SIGINT');
  const r2 = await interrupted.child;
  assert.notEqual(r2.exitCode, 0);
  for (let i = 0; i < 20 && (await containersOf(outDir)).length > 0; i++) await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await containersOf(outDir), [], 'no build container keeps running after Ctrl-C');
  // The executor is killed before it can clean up its (hidden) scratch folder; the next build does.
  assertNothingLeft(outDir, false);

  // 3. nx is SIGKILLed (no handler runs) while make would go on for ten minutes: the dead man's
  // switch in the container sees its client gone and stops the build within seconds.
  const kbuild = await ws.read('drivers/kmx-echo/Kbuild');
  await ws.write('drivers/kmx-echo/Kbuild', `${kbuild}$(shell sleep 600)\n`);
  const killedNx = startBuild(ws, name, outDir);
  await killedNx.running;
  await new Promise((r) => setTimeout(r, 2_000));
  assert.equal((await containersOf(outDir)).length, 1, 'the build is running');
  const killedAt = Date.now();
  process.kill(-killedNx.child.pid!, 'SIGKILL');
  await killedNx.child;
  while ((await containersOf(outDir)).length > 0) {
    assert.ok(Date.now() - killedAt < 30_000, 'the build container outlived its killed client by 30 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  await ws.write('drivers/kmx-echo/Kbuild', kbuild);

  // 4. The next run builds cleanly.
  expectOk(await ws.nx(['run', `${name}:build-driver`, '--skip-nx-cache']), 'rebuild');
  assert.ok(existsSync(join(outDir, 'kmx_echo.ko')));
  assert.deepEqual(scratchOf(outDir), [], "the interrupted build's scratch folder is gone");
});
