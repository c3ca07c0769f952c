/**
 * Any driver, including DKMS trees: three real -dkms packages from Debian's archive (one module;
 * three; lttng-modules, whose module list follows the kernel's .config), a fixture tree using
 * every dkms.conf variable kmatrix honours, and trees whose BUILD_EXCLUSIVE_* leave a kernel out —
 * imported, evaluated by bash in the toolchain container for each target's kernel, built. And
 * every bad value a dkms.conf can hold is a named error at import, with nothing written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';
import { debianPackage } from '../support/debian-package.ts';

test('DKMS drivers are built as DKMS builds them: dkms.conf evaluated for each kernel, every variable honoured', {
  timeout: 25 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-dkms-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  expectOk(
    await ws.kmatrix(['crawl', 'deb', '--release', 'bookworm', '--arch', 'x86_64,aarch64']),
    'crawl bookworm, both archs',
  );
  const v4l2 = await debianPackage('v4l2loopback-dkms', ws.dir);
  const jool = await debianPackage('jool-dkms', ws.dir);
  // lttng-modules sources the kernel's .config and adds probe modules only under `if [ -n "$CONFIG_…" ]`.
  const lttng = await debianPackage('lttng-modules-dkms', ws.dir);

  const one = expectOk(await ws.kmatrix(['driver', 'import', v4l2]), 'import v4l2loopback-dkms');
  assert.match(one.all, /imported v4l2loopback as drivers\/v4l2loopback/);
  const three = expectOk(await ws.kmatrix(['driver', 'import', jool, '--name', 'jool']), 'import jool-dkms');
  assert.match(three.all, /modules without a kernel's configuration: jool_common, jool, jool_siit;/);
  const tracer = expectOk(await ws.kmatrix(['driver', 'import', lttng]), 'import lttng-modules-dkms');
  const withoutKernel = tracer.all.match(/modules without a kernel's configuration: (.*);/)![1]!.split(', ');
  assert.ok(
    withoutKernel.includes('lttng-tracer') && !withoutKernel.includes('lttng-probe-kvm'),
    withoutKernel.join(' '),
  );
  // The suggested rule selects kernels that kernels/ has.
  const suggested = JSON.parse(three.all.match(/next: add a matrix rule, e\.g\. (\{.*\}), then/)![1]!);
  assert.equal(suggested.distro, 'debian-bookworm');

  await ws.write(
    'legacy/dkms.conf',
    'PACKAGE_NAME="legacy"\nPACKAGE_VERSION="1"\nBUILD_EXCLUSIVE_KERNEL="^5\\\\."\nBUILT_MODULE_NAME[0]="legacy"\n',
  );
  await ws.write('legacy/Kbuild', 'obj-m := legacy.o\n');
  await ws.write('legacy/legacy.c', '#include <linux/module.h>\nMODULE_LICENSE("GPL");\n');
  await ws.write('future/dkms.conf', 'PACKAGE_NAME="future"\nPACKAGE_VERSION="1"\nBUILD_EXCLUSIVE_KERNEL_MIN="7.0"\n');
  await ws.write('future/Kbuild', 'obj-m := future.o\n');
  await ws.write('future/future.c', '#include <linux/module.h>\nMODULE_LICENSE("GPL");\n');
  for (const tree of ['legacy', 'future', 'test/fixtures/dkms/all-variables'])
    expectOk(await ws.kmatrix(['driver', 'import', join(ws.dir, tree)]), `import ${tree}`);

  const policy = JSON.parse(await ws.read('support-matrix.json'));
  assert.deepEqual(
    policy.drivers.jool,
    { path: 'drivers/jool', dkms: true },
    "the modules are dkms.conf's to name, per kernel",
  );
  const list = JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json')).debian as {
    kmatrix: { abi: string; flavour: string };
  }[];
  const abis = [
    ...new Set(
      list.filter((e) => e.kmatrix.flavour === 'amd64' && e.kmatrix.abi.startsWith('6.1.0-')).map((e) => e.kmatrix.abi),
    ),
  ];
  const newest = abis.at(-1)!;
  // lttng-modules 2.13.9 does not compile against bookworm's later 6.1 ABIs (a backported hrtimer
  // tracepoint change): it is built for the oldest 6.1 ABI the archive has.
  const oldest = abis[0]!;
  const rule = { distro: 'debian-bookworm', archs: ['x86_64'], flavours: ['amd64'], kernels: [newest] };
  policy.matrix = [{ ...suggested, driver: 'jool' }];
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));
  assert.match(
    expectOk(await ws.kmatrix(['gen', '--dry-run']), 'gen with the suggested rule').all,
    /^1 targets: 1 would be added/m,
    'the suggested rule selects a kernel',
  );
  policy.matrix = [
    ...['v4l2loopback', 'jool', 'legacy', 'future'].map((driver) => ({ driver, ...rule })),
    { driver: 'lttng-modules', ...rule, kernels: [oldest] },
    {
      driver: 'kmx-dkms-fixture',
      distro: 'debian-bookworm',
      archs: ['x86_64', 'aarch64'],
      flavours: ['amd64', 'arm64'],
      kernels: [newest],
    },
  ];
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));
  expectOk(await ws.kmatrix(['gen']), 'gen');
  await ws.commitAll('six DKMS drivers');

  const run = await ws.nx(['run-many', '-t', 'build-driver', '--output-style=static']);
  const out = (driver: string, arch = 'x86_64', flavour = 'amd64', abi = newest) =>
    join(ws.dir, 'dist/targets', driver, 'debian-bookworm', `${abi}-${flavour}`, arch);
  const built = async (driver: string, arch?: string, flavour?: string, abi?: string) => {
    const dir = out(driver, arch, flavour, abi);
    assert.ok(existsSync(join(dir, 'build.json')), `${driver} ${arch}: not built\n${run.all.slice(-4000)}`);
    return JSON.parse(await readFile(join(dir, 'build.json'), 'utf8')).outputs.map(
      (o: { file: string }) => o.file,
    ) as string[];
  };
  const vermagic = async (file: string) => (await execa('modinfo', ['-F', 'vermagic', file])).stdout.split(' ')[0];
  assert.deepEqual(await built('v4l2loopback'), ['v4l2loopback.ko']);
  assert.equal(await vermagic(join(out('v4l2loopback'), 'v4l2loopback.ko')), `${newest}-amd64`);

  // lttng-modules: the modules of *this* kernel's configuration, every one built.
  const traced = await built('lttng-modules', 'x86_64', 'amd64', oldest);
  assert.ok(traced.includes('lttng-probe-kvm.ko'), "CONFIG_KVM is set in Debian's amd64 kernel");
  assert.ok(!traced.includes('lttng-probe-compaction.ko'), 'dkms.conf leaves it out from 5.18 on');
  assert.ok(
    traced.length > withoutKernel.length,
    `${traced.length} modules for the kernel, ${withoutKernel.length} without one`,
  );
  for (const ko of traced)
    assert.equal(await vermagic(join(out('lttng-modules', 'x86_64', 'amd64', oldest), ko)), `${oldest}-amd64`, ko);

  // The fixture: one module per arch chosen by the kernel's .config, the other renamed and not stripped.
  assert.deepEqual(await built('kmx-dkms-fixture'), ['kmx_base_renamed.ko', 'kmx_x86.ko']);
  assert.deepEqual(await built('kmx-dkms-fixture', 'aarch64', 'arm64'), ['kmx_base_renamed.ko', 'kmx_arm64.ko']);
  const sections = async (file: string) => (await execa('readelf', ['-S', '-W', file])).stdout;
  assert.doesNotMatch(
    await sections(join(out('kmx-dkms-fixture'), 'kmx_base_renamed.ko')),
    /\.debug_info/,
    'stripped by default',
  );
  assert.match(await sections(join(out('kmx-dkms-fixture'), 'kmx_x86.ko')), /\.debug_info/, 'STRIP[1]="no"');
  assert.doesNotMatch(
    await sections(join(out('kmx-dkms-fixture', 'aarch64', 'arm64'), 'kmx_base_renamed.ko')),
    /\.debug_info/,
    "stripped by the cross toolchain's strip",
  );
  assert.match(await sections(join(out('kmx-dkms-fixture', 'aarch64', 'arm64'), 'kmx_arm64.ko')), /\.debug_info/);
  const base = await readFile(join(out('kmx-dkms-fixture'), 'kmx_base_renamed.ko'), 'latin1');
  assert.ok(base.includes('patched') && !base.includes('unpatched'), 'PATCH[0] applied');
  assert.ok(base.includes(`${newest}-amd64`), 'PRE_BUILD wrote version.h for this kernel');
  const log = await readFile(join(out('kmx-dkms-fixture'), 'build.log'), 'utf8');
  const esc = (x: string) => x.replace(/[.+]/g, '\\$&');
  assert.match(log, /not applying patches\/break-build\.patch: PATCH_MATCH\[1\]="\^5\\\." does not match/);
  assert.match(log, /applying patches\/fix-greeting\.patch/);
  assert.match(log, new RegExp(`gen-version: version\\.h for ${esc(newest)}-amd64`));
  assert.match(
    log,
    new RegExp(
      `\\+ make -j\\d+ KERNELRELEASE=${esc(newest)}-amd64 -C /lib/modules/${esc(newest)}-amd64/build M=/tmp/dkms/kmx-dkms-fixture/1\\.0/build modules`,
    ),
    'MAKE[1] by MAKE_MATCH, with -j and KERNELRELEASE',
  );
  assert.match(log, /post-build: 2 modules built/);

  assert.deepEqual(await built('jool'), ['jool_common.ko', 'jool.ko', 'jool_siit.ko']);
  assert.match(
    run.all,
    new RegExp(
      `legacy--debian-bookworm--${esc(newest)}-amd64--x86_64: BUILD_EXCLUSIVE_KERNEL="\\^5\\\\\\." does not match ${esc(newest)}-amd64`,
    ),
  );
  assert.match(
    run.all,
    new RegExp(
      `future--debian-bookworm--${esc(newest)}-amd64--x86_64: BUILD_EXCLUSIVE_KERNEL_MIN="7\\.0": ${esc(newest)}-amd64 is older`,
    ),
  );
  assert.equal(run.exitCode, 0, `a skipped kernel is not a failure\n${run.all.slice(-3000)}`);
});

test('driver import never ends in "unexpected error": a bad dkms.conf value is named, and nothing is written', {
  timeout: 10 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-dkms-bad-');
  t.after(() => ws.remove());
  await preparePipeline(ws);
  const policyBefore = await ws.read('support-matrix.json');
  const module = '#include <linux/module.h>\nMODULE_LICENSE("GPL");\n';
  const cases: [string, string, RegExp][] = [
    [
      'traversal',
      'PACKAGE_NAME="t"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="t"\nBUILT_MODULE_NAME[1]="../../etc/passwd"\n',
      /dkms\.conf: BUILT_MODULE_NAME\[1\]="\.\.\/\.\.\/etc\/passwd" is not a module name/,
    ],
    [
      'suffix',
      'PACKAGE_NAME="s"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="s"\nDEST_MODULE_NAME[0]="s.ko"\n',
      /dkms\.conf: DEST_MODULE_NAME\[0\]="s\.ko" ends in \.o or \.ko/,
    ],
    [
      'location',
      'PACKAGE_NAME="l"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="l"\nBUILT_MODULE_LOCATION[0]="/etc"\n',
      /dkms\.conf: BUILT_MODULE_LOCATION\[0\]="\/etc" must be a folder inside the source tree/,
    ],
    [
      'no-name',
      'PACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="n"\n',
      /dkms\.conf: PACKAGE_NAME="" is empty: DKMS requires it/,
    ],
    [
      'newline',
      'PACKAGE_NAME="nl"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="a\nb"\n',
      /dkms\.conf: BUILT_MODULE_NAME\[0\]="a\\nb" is not a module name/,
    ],
    ['exits', 'PACKAGE_NAME="x"\necho "about to leave" >&2\nexit 3\n', /bash could not evaluate dkms\.conf \(exit 3\)/],
  ];
  for (const [name, conf, message] of cases) {
    await ws.write(`${name}/dkms.conf`, conf);
    await ws.write(`${name}/Kbuild`, 'obj-m := x.o\n');
    const r = await ws.kmatrix(['driver', 'import', join(ws.dir, name)]);
    assert.equal(r.exitCode, 1, `${name}: ${r.all}`);
    assert.match(r.stderr, message, name);
    assert.doesNotMatch(r.all, /unexpected error/, name);
    assert.equal(await ws.read('support-matrix.json'), policyBefore, `${name}: the policy is unchanged`);
    assert.ok(!existsSync(join(ws.dir, 'drivers', name)), `${name}: no driver folder`);
  }
  // A dkms.conf written for a kernel, evaluated without one: noise on both streams, failing tests.
  await ws.write(
    'noisy/dkms.conf',
    'PACKAGE_NAME="noisy"\nPACKAGE_VERSION="1"\necho "BUILT_MODULE_NAME=bogus"\n[ "$VERSION" -ge 3 ] && echo new\n. $kernel_source_dir/.config\nif [ -n "$CONFIG_NET" ]; then BUILT_MODULE_NAME[1]="noisy_net"; fi\nBUILT_MODULE_NAME[0]="noisy"\n',
  );
  await ws.write('noisy/Kbuild', 'obj-m := noisy.o\n');
  await ws.write('noisy/noisy.c', module);
  const noisy = expectOk(await ws.kmatrix(['driver', 'import', join(ws.dir, 'noisy')]), 'import noisy');
  assert.match(noisy.all, /modules without a kernel's configuration: noisy;/);
});
