/**
 * "Built" is not the finish line: test-driver boots each target's own kernel under QEMU (amd64
 * and arm64, 6.1 and 6.12) and proves the module loads, passes the driver's smoke test and
 * unloads; a module built for another flavour is rejected by the kernel; a smoke test that fails
 * or hangs is reported as such, and a hung guest leaves no QEMU behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { HeaderStore } from '../../tools/kmatrix/packages/store.ts';
import {
  BOOT_POLICY,
  cacheHits,
  createWorkspace,
  expectOk,
  preparePipeline,
  testStore,
  writeTarget,
} from '../support/workspace.ts';

/**
 * The accelerator an x86_64 guest must get on this machine: KVM only when /dev/kvm exists and the
 * once-per-boot check (its verdict in the store) saw a kernel boot under it; otherwise TCG.
 */
async function expectedAccel(): Promise<'KVM' | 'TCG'> {
  if (!existsSync('/dev/kvm')) return 'TCG';
  const dir = join(testStore, 'boot');
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith('kvm-'));
  const verdicts = (await Promise.all(files.map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8'))))).filter(
    (v: { key: string }) => v.key.startsWith(`${bootId} `),
  );
  assert.ok(verdicts.length > 0, 'with /dev/kvm present, the KVM check of this machine boot left its verdict');
  // Each QEMU binary has its verdict; the x86_64 one is the one these guests ran under.
  const x86 = verdicts.filter((v: { key: string }) => v.key.includes('qemu-system-x86_64'));
  assert.ok(x86.length > 0, "the x86_64 QEMU's verdict of this machine boot");
  return x86.some((v: { works: boolean }) => v.works) ? 'KVM' : 'TCG';
}

async function qemuProcesses(): Promise<string> {
  return (await execa('pgrep', ['-af', 'qemu-system'], { reject: false })).stdout.trim();
}

test('a user proves every target loads on its own kernel, and sees what does not', {
  timeout: 30 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-boot-');
  t.after(() => ws.remove());
  await preparePipeline(ws, BOOT_POLICY);
  const projects = expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver']), 'nx show projects')
    .stdout.split('\n')
    .filter(Boolean)
    .sort();
  assert.equal(projects.length, 5, projects.join(', '));

  // Every target: built, then booted on its kernel; the summary has the boot columns.
  const run = expectOk(
    await ws.nx(['run-many', '-t', 'test-driver', '--output-style=stream']),
    'nx run-many -t test-driver',
  );
  assert.match(run.all, /build-driver and test-driver summary, 5 targets/);
  assert.match(run.all, /debian-bookworm aarch64\s+2\s+0\s+0\s+0\s+2\s+0\s+0/);
  assert.match(run.all, /debian-bookworm x86_64\s+3\s+0\s+0\s+0\s+3\s+0\s+0/);
  for (const p of projects) {
    const [, , release, arch] = p.split('--');
    const result = JSON.parse(
      await ws.read(`dist/boot/targets/kmx-echo/debian-bookworm/${release}/${arch}/result.json`),
    );
    assert.equal(result.status, 'loads', `${p}: ${result.message}`);
    assert.equal(result.booted, release, "the guest ran the target's own kernel");
    assert.deepEqual(result.smokeOutput.at(-1), 'echo device ok: wrote, read back, cleared');
    assert.ok(result.timings.bootMs > 0 && result.timings.testMs > 0);
    const consoleText = await ws.read(result.console);
    assert.match(
      consoleText,
      /KMX-RESULT insmod-ok kmx_echo[\s\S]*KMX-RESULT smoke-ok[\s\S]*KMX-RESULT rmmod-ok kmx_echo/,
    );
  }
  // Both archs really were emulated as themselves.
  assert.match(run.all, /booting 6\.1\.0-\d+-arm64 \(aarch64, TCG, arm64-image\)/);
  // x86_64 boots the pre-unpacked vmlinux through its PVH entry, under the accelerator this machine proved.
  assert.match(
    run.all,
    new RegExp(`booting 6\\.12\\.\\d+\\+deb12-amd64 \\(x86_64, ${await expectedAccel()}, pvh-elf\\)`),
  );

  // Cached like the builds: nothing boots again.
  const again = expectOk(await ws.nx(['run-many', '-t', 'test-driver']), 'second run');
  assert.deepEqual(cacheHits(again.all), { hits: 10, total: 10 });

  // The report shows the verdict next to the build.
  const report = JSON.parse(expectOk(await ws.kmatrix(['report', '--json', '-']), 'report').stdout);
  assert.equal(report.cells.filter((c: { boot?: { status: string } }) => c.boot?.status === 'loads').length, 5);
  expectOk(await ws.kmatrix(['report', '--out', 'dist/report/index.html']), 'report --out');
  assert.equal((await ws.read('dist/report/index.html')).match(/class="boot b-loads"/g)?.length, 5);

  // A module built for another flavour of the same ABI, booted on this one: the kernel refuses it.
  const [cloud] = projects.filter((p) => p.includes('cloud-amd64'));
  const [plain] = projects.filter((p) => p.match(/--6\.1\.0-\d+-amd64--/));
  const cloudDir = `dist/targets/kmx-echo/debian-bookworm/${cloud!.split('--')[2]}/x86_64`;
  const wrong = await ws.kmatrix(['boot', plain!, '--modules', cloudDir]);
  assert.equal(wrong.exitCode, 1, wrong.all);
  assert.match(
    wrong.stdout,
    /rejected by kernel ✗ — rejected by kernel: kmx_echo: disagrees about version of symbol module_layout/,
  );
  assert.match(wrong.stdout, /console: reproduce\/.*\/boot\/console\.log/);
  // …and that did not overwrite the target's own verdict.
  assert.equal(
    JSON.parse(await ws.read(`dist/boot/targets/kmx-echo/debian-bookworm/${plain!.split('--')[2]}/x86_64/result.json`))
      .status,
    'loads',
  );

  // A smoke test that fails: only the boot tests run again (the script is not a build input).
  await ws.write('drivers/kmx-echo/smoke-test.sh', 'echo "reading /dev/kmx_echo gave garbage" >&2\nexit 3\n');
  await ws.commitAll('break the smoke test');
  const failing = await ws.nx(['run', `${plain}:test-driver`, '--output-style=stream']);
  assert.notEqual(failing.exitCode, 0);
  assert.match(
    failing.all,
    /nx run kmx-echo--debian-bookworm--6\.1\.0-\d+-amd64--x86_64:build-driver\s+\[local cache\]/,
    'the build came from the cache',
  );
  assert.match(failing.all, /smoke test failed ✗ — the smoke test exited 3: reading \/dev\/kmx_echo gave garbage/);
  assert.match(
    failing.all,
    /not proven to load:\n\s+kmx-echo--debian-bookworm--6\.1\.0-\d+-amd64--x86_64: smoke test failed ✗/,
  );

  // A guest that hangs: killed at the deadline, reported at its last console line, no QEMU left.
  await ws.write('drivers/kmx-echo/smoke-test.sh', 'echo "waiting for an interrupt that never comes"\nsleep 600\n');
  await ws.commitAll('hang in the smoke test');
  const started = Date.now();
  const hung = await ws.nx(['run', `${plain}:test-driver`, '--timeout=25', '--output-style=stream']);
  assert.notEqual(hung.exitCode, 0);
  assert.ok(Date.now() - started < 90_000, 'the hard timeout held');
  assert.match(hung.all, /hung ✗ — hung at: KMX-SMOKE waiting for an interrupt that never comes/);
  assert.equal(await qemuProcesses(), '', 'no QEMU process outlives its test');

  // The runner itself dies (SIGKILL: no handler runs) while the guest hangs: QEMU still ends at
  // its deadline, 2 s of grace at most, because coreutils `timeout` owns it.
  const deadline = 20;
  const runner = execa(
    process.execPath,
    [join(ws.dir, 'tools/kmatrix/cli.ts'), 'boot', plain!, '--timeout', String(deadline)],
    { cwd: ws.dir, env: ws.env, reject: false },
  );
  let runnerEnded = false;
  void runner.then(() => {
    runnerEnded = true;
  });
  // Our own guest, not another test file's: the `timeout` the runner starts, and its QEMU.
  const childOf = async (pid: number, name?: string) =>
    Number(
      (await execa('pgrep', ['-P', String(pid), ...(name ? ['-x', name] : [])], { reject: false })).stdout.split(
        '\n',
      )[0],
    ) || 0;
  let timeoutPid = 0;
  let qemuPid = 0;
  let spawned = 0;
  while (!qemuPid) {
    assert.ok(!runnerEnded, 'the runner is still there when its QEMU starts');
    timeoutPid ||= await childOf(runner.pid!, 'timeout');
    if (timeoutPid && !spawned) spawned = Date.now();
    if (timeoutPid) qemuPid = await childOf(timeoutPid);
    if (!qemuPid) await new Promise((r) => setTimeout(r, 100));
  }
  const alive = async (pid: number) =>
    (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).replace(/^.*\) /, '').charAt(0) || 'gone';
  await new Promise((r) => setTimeout(r, 3_000));
  runner.kill('SIGKILL');
  await runner;
  assert.ok(!['Z', 'gone'].includes(await alive(qemuPid)), 'the guest outlives its killed runner until the deadline');
  while (!['Z', 'gone'].includes(await alive(qemuPid)) || !['Z', 'gone'].includes(await alive(timeoutPid)))
    await new Promise((r) => setTimeout(r, 100));
  const lived = (Date.now() - spawned) / 1000;
  // `timeout` was seen within 0.1 s of starting; 1.5 s of slack for polling on a busy machine.
  assert.ok(lived <= deadline + 2 + 1.5, `QEMU lived ${lived.toFixed(1)} s for a ${deadline} s deadline`);
  assert.ok(lived >= deadline - 1, `QEMU lived ${lived.toFixed(1)} s: it was not killed with its runner`);
});

test('a kernel the archive has no image for is reported as a gap; a corrupt image download is refetched, then refused', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-boot-faults-');
  t.after(() => ws.remove());
  await preparePipeline(ws, BOOT_POLICY);
  const release = (await readdir(join(ws.dir, 'targets/kmx-echo/debian-bookworm'))).find((r) =>
    /^6\.1\.0-\d+-amd64$/.test(r),
  );
  const file = `targets/kmx-echo/debian-bookworm/${release}/x86_64/target.json`;
  const target = JSON.parse(await ws.read(file));
  const name = target.name as string;
  expectOk(await ws.nx(['run', `${name}:build-driver`]), 'build');

  // No image: nothing to boot is the archive's gap, not the driver's failure.
  const { image, ...kernel } = target.kernel;
  await writeTarget(ws, file, {
    ...target,
    kernel: { ...kernel, imageGap: 'the archive index lists no linux-image-x-unsigned' },
  });
  const gap = await ws.kmatrix(['boot', name, '--json']);
  assert.equal(gap.exitCode, 0, gap.all);
  const gapDoc = JSON.parse(gap.stdout);
  assert.deepEqual([gapDoc.result.target, gapDoc.result.status], [name, 'gap']);
  assert.match(
    gap.stderr,
    /: not tested — no kernel image to boot \(an infrastructure gap\): the archive index lists no linux-image-x-unsigned/,
  );

  // An image served with the wrong bytes: fetched once more, then refused; nothing stored.
  const { startServer } = await import('../support/http.ts');
  // The real image, fetched (and checked) into the tests' store: what an honest mirror serves.
  const real = await readFile(await new HeaderStore(testStore).package(image));
  let honestAfter = Infinity;
  const server = await startServer((_req, res, hit) => {
    const body = hit > honestAfter ? real : Buffer.alloc(image.size, 7);
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  t.after(() => server.close());
  const store = join(ws.dir, '.fresh-store');
  await writeTarget(ws, file, {
    ...target,
    kernel: { ...kernel, image: { ...image, url: `${server.url}/image.deb` } },
  });
  const corrupt = await ws.kmatrix(['boot', name], { KMATRIX_STORE: store, KMATRIX_ACCEL: 'tcg' });
  assert.equal(corrupt.exitCode, 1, corrupt.all);
  assert.match(corrupt.stderr, /SHA256 mismatch for linux-image-6\.1\.0-\d+-amd64-unsigned .*; fetching it once more/);
  assert.match(corrupt.stderr, /kmatrix: SHA256 mismatch for linux-image-.*nothing was stored/s);
  assert.equal(server.hits.get('/image.deb'), 2);
  assert.equal((await execa('sh', ['-c', `ls ${store}/debs | grep -c "${image.sha256}" || true`])).stdout.trim(), '0');

  // A mirror caught mid-sync: the second answer is right, and the test goes on to boot it.
  honestAfter = server.hits.get('/image.deb')! + 1;
  const healed = await ws.kmatrix(['boot', name], { KMATRIX_STORE: store, KMATRIX_ACCEL: 'tcg' });
  assert.equal(healed.exitCode, 0, healed.all);
  assert.match(healed.stderr, /SHA256 mismatch for linux-image-.*; fetching it once more/);
  assert.match(healed.stdout, /loads ✓/);
  assert.equal(server.hits.get('/image.deb'), 4, 'one wrong answer, then the right one');
});
