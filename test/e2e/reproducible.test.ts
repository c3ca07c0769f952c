/**
 * Reproducible by construction: the same target built from two checkouts in different folders
 * (different path lengths, so any leaked path would show) gives byte-identical .ko files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

test('two builds of one target in different folders give byte-identical modules', {
  timeout: 10 * 60_000,
}, async (t) => {
  const a = await createWorkspace('kmatrix-repro-a-');
  t.after(() => a.remove());
  const b = await createWorkspace('kmatrix-repro-b-', join(tmpdir(), 'kmatrix-a-much-longer-parent-folder', 'nested'));
  t.after(() => b.remove());
  await preparePipeline(a);
  // The same policy and kernel list in both, so both plan the very same target.json.
  await b.write('support-matrix.json', await a.read('support-matrix.json'));
  await rm(join(b.dir, 'kernels'), { recursive: true, force: true });
  await b.write('kernels/debian-bookworm-x86_64.json', await a.read('kernels/debian-bookworm-x86_64.json'));
  expectOk(await b.kmatrix(['toolchain', 'build', 'debian-bookworm']), 'toolchain build in b');
  expectOk(await b.kmatrix(['gen']), 'gen in b');

  const names: string[] = JSON.parse(
    expectOk(await a.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  );
  // One 6.1 and one 6.12 kernel: 6.12 also runs pahole for BTF, which is parallel unless pinned.
  const picks = [names.find((n) => n.includes('--6.1.0-')), names.find((n) => n.includes('--6.12.'))];
  for (const name of picks) {
    assert.ok(name, `the default matrix has a 6.1 and a 6.12 target (${names.join(', ')})`);
    assert.equal(
      await a.read(join('targets', ...name.split('--'), 'target.json')),
      await b.read(join('targets', ...name.split('--'), 'target.json')),
    );
    const ra = expectOk(await a.kmatrix(['build', name, '--out', 'out']), `build ${name} in a`);
    const rb = expectOk(await b.kmatrix(['build', name, '--out', 'out']), `build ${name} in b`);
    const [ha, hb] = [await sha256(join(a.dir, 'out', 'kmx_echo.ko')), await sha256(join(b.dir, 'out', 'kmx_echo.ko'))];
    assert.equal(ha, hb, `${name}: ${a.dir} and ${b.dir} built different bytes`);
    // The command reports the same digest it wrote.
    assert.match(ra.stdout, new RegExp(`^${ha}  out/kmx_echo\\.ko$`, 'm'));
    assert.match(rb.stdout, new RegExp(`^${hb}  out/kmx_echo\\.ko$`, 'm'));
  }
});

test('a paged engineer reproduces one target with one command, verifies it, and opens its build container', {
  timeout: 10 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-reproduce-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const name = (
    JSON.parse(
      expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
    ) as string[]
  ).find((n) => n.includes('--6.1.0-'))!;
  expectOk(await ws.nx(['run', `${name}:build-driver`]), 'CI builds it (into the Nx cache)');

  const [driver, distro, release, arch] = name.split('--') as [string, string, string, string];
  const same = expectOk(
    await ws.kmatrix(['reproduce', `${driver}/${distro}/${release}/${arch}`, '--verify', '--json']),
    'reproduce --verify --json',
  );
  const ko = await sha256(join(ws.dir, 'reproduce', name, 'kmx_echo.ko'));
  assert.match(same.stderr, new RegExp(`^${ko}  reproduce/${name.replace(/[.+]/g, '\\$&')}/kmx_echo\\.ko$`, 'm'));
  assert.match(same.stderr, /^identical to the local Nx cache entry \d+$/m);
  const sameDoc = JSON.parse(same.stdout);
  assert.deepEqual(sameDoc.result.modules, [{ file: `reproduce/${name}/kmx_echo.ko`, sha256: ko }]);
  assert.equal(sameDoc.result.verify.identical, true);
  assert.equal(ko, await sha256(join(ws.dir, 'dist/targets', driver, distro, release, arch, 'kmx_echo.ko')));

  // A local edit: the reproduction differs, and says which input.
  await ws.write(
    'drivers/kmx-echo/kmx_echo_main.c',
    `${await ws.read('drivers/kmx-echo/kmx_echo_main.c')}\nint kmx_local_edit;\n`,
  );
  const changed = await ws.kmatrix(['reproduce', name, '--verify']);
  assert.equal(changed.exitCode, 1, changed.all);
  assert.match(
    changed.stdout,
    /^differs from the local Nx cache entry \d+:\n {2}kmx_echo\.ko: sha256 [0-9a-f]{64} here, [0-9a-f]{64} in the reference/m,
  );
  assert.match(changed.stdout, /^ {2}input source: kmx_echo_main\.c changed$/m);

  // The exact build container: its headers, environment and command, no network.
  const shell = expectOk(
    await ws.kmatrix([
      'reproduce',
      name,
      '--shell',
      '--',
      'sh',
      '-c',
      'ls /usr/src; echo "TS=$KBUILD_BUILD_TIMESTAMP"; echo "MAKE=$KMATRIX_MAKE"; ls /build/src/kmx_echo_main.c; getent hosts deb.debian.org || echo offline; eval "$KMATRIX_MAKE" > /tmp/make.log 2>&1 && ls /build/src/kmx_echo.ko',
    ]),
    'reproduce --shell',
  );
  assert.match(shell.stdout, new RegExp(`^linux-headers-${release.replace(/[.+]/g, '\\$&')}$`, 'm'));
  assert.match(shell.stdout, /^TS=1970-01-01 00:00:00 UTC$/m);
  assert.match(
    shell.stdout,
    new RegExp(
      `^MAKE='make' '-C' '/usr/src/linux-headers-${release.replace(/[.+]/g, '\\$&')}' 'M=/build/src' 'ARCH=x86' `,
      'm',
    ),
  );
  // The command runs as it is, by hand, in the very container.
  assert.match(shell.stdout, /^\/build\/src\/kmx_echo\.ko$/m);
  assert.match(shell.stdout, /^offline$/m);
});
