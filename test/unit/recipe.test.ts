/**
 * Recipes are the cache keys of build-driver and test-driver. These tests hold kmatrix to that:
 * the committed targets' recipes are what the code renders; the container and the guest a recipe
 * turns into are pinned by a golden table that may change only together with RECIPE_VERSION; each
 * field of a recipe reaches the container; a stale recipe is refused and named by field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerCreateOptions } from 'dockerode';
import { repoRoot } from '../support/workspace.ts';
import { loadTarget, type Target, type TargetSpec } from '../../tools/kmatrix/model/target.ts';
import { loadGuestLock } from '../../tools/kmatrix/model/guest-lock.ts';
import type { BuildRecipe } from '../../tools/kmatrix/model/recipe.ts';
import { RECIPE_VERSION } from '../../tools/kmatrix/recipe/version.ts';
import { containerOptions, materializeMounts, sourceDigests } from '../../tools/kmatrix/recipe/container.ts';
import { guestArgv } from '../../tools/kmatrix/recipe/guest.ts';
import {
  buildRecipeDifferences,
  requireCurrentBootRecipe,
  requireCurrentBuildRecipe,
  StaleRecipeError,
  withRecipes,
} from '../../tools/kmatrix/recipe/check.ts';
import { staleRecipes } from '../../tools/kmatrix/gen/recipe-check.ts';
import { writeInitramfs } from '../../tools/kmatrix/boot/initramfs.ts';
import { readConsole } from '../../tools/kmatrix/boot/console.ts';
import { initScript } from '../../tools/kmatrix/recipe/init-script.ts';
import { createHash } from 'node:crypto';
import { bootInputs, buildInputs } from '../../tools/kmatrix/compile/inputs.ts';
import { compareInputs } from '../../tools/kmatrix/cache/explain.ts';
import type { BuildRecord } from '../../tools/kmatrix/model/build-record.ts';

const GOLDEN = join(repoRoot, 'test/unit/golden/recipe-interpreter.json');
const committed = (path: string) => loadTarget(join(repoRoot, 'targets/kmx-echo', path, 'target.json'));

/** The specs the golden table covers: committed Debian targets (native and cross), a DKMS driver, an RPM kernel. */
async function fixtureSpecs(): Promise<Record<string, TargetSpec>> {
  const { recipe: _r, boot: _b, ...amd64 } = await committed('debian-bookworm/6.1.0-57-amd64/x86_64');
  const { recipe: _r2, boot: _b2, ...arm64 } = await committed('debian-bookworm/6.1.0-57-arm64/aarch64');
  const rpm: TargetSpec = {
    ...amd64,
    name: 'kmx-echo--fedora-41--6.11.4-301.fc41.x86_64--x86_64',
    kernelrelease: '6.11.4-301.fc41.x86_64',
    kernelDir: '/usr/src/kernels/6.11.4-301.fc41.x86_64',
    headers: [{ ...amd64.headers[0]!, role: 'devel', name: 'kernel-devel', sha256: 'd'.repeat(64) }],
  };
  return {
    'debian amd64': amd64,
    'debian arm64 (cross)': arm64,
    'dkms driver': { ...amd64, driver: { name: 'kmx-echo', path: 'drivers/kmx-echo', dkms: true } },
    'rpm kernel': rpm,
  };
}

const RUNTIME = {
  repository: '127.0.0.1:5000/kmatrix/example',
  user: '65532:65532',
  limits: { memoryBytes: 4 * 1024 ** 3, pids: 4096, cpus: 2, tmpfsBytes: 1024 ** 3 },
  jobs: 2,
};

/** A recipe made real in a scratch folder whose package trees all hold the same folders; paths shown relative to it. */
async function interpret(recipe: BuildRecipe): Promise<ContainerCreateOptions> {
  const tmp = await mkdtemp(join(tmpdir(), 'kmatrix-recipe-'));
  try {
    const tree = join(tmp, 'tree');
    for (const d of ['usr/src/linux-headers-x', 'usr/lib/linux-kbuild-6.1', 'usr/lib/other', 'usr/src/kernels/k'])
      await mkdir(join(tree, d), { recursive: true });
    const scratch = join(tmp, 'scratch');
    await mkdir(scratch);
    const { binds } = await materializeMounts(recipe.mounts, { tree: async () => tree, root: repoRoot, scratch });
    return JSON.parse(JSON.stringify(containerOptions(recipe, { ...RUNTIME, binds })).replaceAll(tmp, '<tmp>'));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * How the boot test turns a guest into bytes and a console into a verdict: the initramfs writer on
 * fixed entries (the /init of a smoke-tested module included), and the verdicts of fixed consoles.
 */
function bootInterpreter() {
  const initramfs = writeInitramfs([
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', data: Buffer.from('busybox'), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'dir', path: 'kmatrix' },
    { type: 'file', path: 'init', data: Buffer.from(initScript(['kmx_echo'], true)), mode: 0o755 },
    { type: 'file', path: 'kmatrix/kmx_echo.ko', data: Buffer.from('module') },
  ]);
  const head = ['KMX-RESULT booted 6.1.0-57-amd64', 'KMX-RESULT step insmod kmx_echo'];
  const consoles: Record<string, [string[], 'exited' | 'timeout']> = {
    loads: [
      [
        ...head,
        'KMX-RESULT insmod-ok kmx_echo',
        'KMX-RESULT step smoke',
        'KMX-SMOKE ok',
        'KMX-RESULT smoke-ok',
        'KMX-RESULT step rmmod kmx_echo',
        'KMX-RESULT rmmod-ok kmx_echo',
        'KMX-RESULT done',
      ],
      'exited',
    ],
    rejected: [
      [
        ...head,
        'KMX-RESULT insmod-failed kmx_echo Invalid module format',
        'KMX-DMESG [    1.2] kmx_echo: disagrees about version of symbol module_layout',
        'KMX-RESULT done',
      ],
      'exited',
    ],
    smokeFailed: [
      [
        ...head,
        'KMX-RESULT insmod-ok kmx_echo',
        'KMX-RESULT step smoke',
        'KMX-SMOKE bad',
        'KMX-RESULT smoke-failed 1',
        'KMX-RESULT step rmmod kmx_echo',
        'KMX-RESULT rmmod-ok kmx_echo',
        'KMX-RESULT done',
      ],
      'exited',
    ],
    oops: [
      [
        ...head,
        'KMX-RESULT insmod-ok kmx_echo',
        'KMX-RESULT smoke-none',
        'KMX-RESULT rmmod-ok kmx_echo',
        'KMX-DMESG [    1.3] BUG: kernel NULL pointer dereference',
        'KMX-RESULT done',
      ],
      'exited',
    ],
    hung: [[...head], 'timeout'],
    wrongKernel: [['KMX-RESULT booted 6.1.0-56-amd64', 'KMX-RESULT done'], 'exited'],
  };
  return {
    initramfsSha256: createHash('sha256').update(initramfs).digest('hex'),
    verdicts: Object.fromEntries(
      Object.entries(consoles).map(([name, [lines, ended]]) => [
        name,
        readConsole(lines.join('\n'), { kernelrelease: '6.1.0-57-amd64', modules: ['kmx_echo'] }, ended),
      ]),
    ),
  };
}

interface GoldenCase {
  name: string;
  target: Pick<Target, 'recipe' | 'boot' | 'driver'>;
  container: ContainerCreateOptions;
  guest: Record<string, string[]>;
  inputs: { build: unknown; boot: unknown };
}

async function caseOf(name: string, target: GoldenCase['target']): Promise<GoldenCase> {
  const files = { kernel: '<kernel>', initrd: '<initrd>' };
  return {
    name,
    target,
    container: await interpret(target.recipe),
    guest: Object.fromEntries(
      Object.keys(target.boot.qemu.accel).map((a) => [a, guestArgv(target.boot.qemu, files, a as 'tcg' | 'kvm')]),
    ),
    inputs: { build: buildInputs(target), boot: bootInputs(target, target.boot.qemu.binary) },
  };
}

test("the committed targets' recipes are what this code renders (as `kmatrix gen --check` says)", async () => {
  const { checked, stale } = await staleRecipes(repoRoot);
  assert.ok(checked >= 8, `checked ${checked}`);
  assert.deepEqual(stale, []);
});

test('the golden table: the same recipe gives the same container, guest and task inputs unless RECIPE_VERSION changes', async () => {
  if (process.env.KMATRIX_UPDATE_GOLDEN || !existsSync(GOLDEN)) {
    assert.ok(!process.env.CI || existsSync(GOLDEN), `${GOLDEN} is missing: it is committed`);
    const lock = await loadGuestLock(repoRoot);
    const cases: GoldenCase[] = [];
    for (const [name, spec] of Object.entries(await fixtureSpecs())) {
      const { recipe, boot, driver } = withRecipes(spec, lock);
      cases.push(await caseOf(name, { recipe, boot, driver }));
    }
    const fresh = { recipeVersion: RECIPE_VERSION, cases, boot: bootInterpreter() };
    if (existsSync(GOLDEN)) {
      // A refresh that changes what a recipe means needs a new RECIPE_VERSION, or no cache key would change.
      const old = JSON.parse(await readFile(GOLDEN, 'utf8')) as {
        recipeVersion: number;
        cases: GoldenCase[];
        boot: unknown;
      };
      // Only a recipe that stayed the same must interpret the same (a recipe rendered anew is gen's business).
      const interpretedDiffers = old.cases.some((c) => {
        const now = cases.find((n) => n.name === c.name);
        return (
          now && JSON.stringify(now.target) === JSON.stringify(c.target) && JSON.stringify(now) !== JSON.stringify(c)
        );
      });
      const changed =
        interpretedDiffers || (old.boot !== undefined && JSON.stringify(old.boot) !== JSON.stringify(fresh.boot));
      assert.ok(
        !changed || old.recipeVersion !== RECIPE_VERSION,
        `the table changes while RECIPE_VERSION stays ${RECIPE_VERSION}: bump it in tools/kmatrix/recipe/version.ts first`,
      );
    }
    await writeFile(GOLDEN, `${JSON.stringify(fresh, null, 2)}\n`);
  }
  const golden = JSON.parse(await readFile(GOLDEN, 'utf8')) as {
    recipeVersion: number;
    cases: GoldenCase[];
    boot: unknown;
  };
  assert.ok(golden.cases.length >= 4);
  const boot = JSON.parse(JSON.stringify(bootInterpreter()));
  if (golden.recipeVersion === RECIPE_VERSION)
    assert.deepEqual(
      boot,
      golden.boot,
      `the boot test now builds guests or reads consoles differently while RECIPE_VERSION is still ${RECIPE_VERSION}: bump it in tools/kmatrix/recipe/version.ts, then KMATRIX_UPDATE_GOLDEN=1 node --test test/unit/recipe.test.ts`,
    );
  for (const c of golden.cases) {
    const now = await caseOf(c.name, c.target);
    const changed = JSON.stringify(now) !== JSON.stringify(c);
    if (changed && golden.recipeVersion === RECIPE_VERSION) {
      assert.deepEqual(
        now,
        c,
        `"${c.name}": the same recipe now runs differently while RECIPE_VERSION is still ${RECIPE_VERSION}: bump it in tools/kmatrix/recipe/version.ts, then KMATRIX_UPDATE_GOLDEN=1 node --test ${'test/unit/recipe.test.ts'}`,
      );
    }
    assert.equal(
      golden.recipeVersion,
      RECIPE_VERSION,
      'RECIPE_VERSION changed: refresh the table with KMATRIX_UPDATE_GOLDEN=1 node --test test/unit/recipe.test.ts',
    );
  }
});

test('each field of a recipe reaches the container configuration', async () => {
  const { recipe } = await committed('debian-bookworm/6.1.0-57-arm64/aarch64');
  const base = await interpret(recipe);
  const changes: [string, (r: BuildRecipe) => BuildRecipe, (c: ContainerCreateOptions) => unknown][] = [
    ['image', (r) => ({ ...r, image: `sha256:${'e'.repeat(64)}` }), (c) => c.Image],
    [
      'mounts (a rule)',
      (r) => ({ ...r, mounts: r.mounts.map((m) => (m.kind === 'package' ? { ...m, to: '/opt' } : m)) }),
      (c) => c.HostConfig?.Binds,
    ],
    [
      'mounts (a link folder)',
      (r) => ({ ...r, mounts: [...r.mounts, { kind: 'links', to: '/lib/modules/x', links: { build: '/usr/src/x' } }] }),
      (c) => c.HostConfig?.Binds,
    ],
    ['workdir', (r) => ({ ...r, workdir: '/elsewhere' }), (c) => c.WorkingDir],
    ['env', (r) => ({ ...r, env: { ...r.env, KBUILD_BUILD_USER: 'someone' } }), (c) => c.Env],
    ['argv', (r) => ({ ...r, argv: [...r.argv, 'V=1'] }), (c) => c.Cmd],
    ['wrapper', (r) => ({ ...r, wrapper: r.wrapper.slice(0, 3) }), (c) => c.Cmd],
    ['jobsEnv', (r) => ({ ...r, jobsEnv: 'KMATRIX_JOBS' }), (c) => c.Env],
    [
      'sandbox.network',
      (r) => ({ ...r, sandbox: { ...r.sandbox, network: 'host' } }),
      (c) => c.HostConfig?.NetworkMode,
    ],
    ['sandbox.capDrop', (r) => ({ ...r, sandbox: { ...r.sandbox, capDrop: [] } }), (c) => c.HostConfig?.CapDrop],
    [
      'sandbox.noNewPrivileges',
      (r) => ({ ...r, sandbox: { ...r.sandbox, noNewPrivileges: false } }),
      (c) => c.HostConfig?.SecurityOpt,
    ],
    [
      'sandbox.readOnlyRoot',
      (r) => ({ ...r, sandbox: { ...r.sandbox, readOnlyRoot: false } }),
      (c) => c.HostConfig?.ReadonlyRootfs,
    ],
    [
      'sandbox.tmpfs',
      (r) => ({ ...r, sandbox: { ...r.sandbox, tmpfs: ['/tmp', '/var/tmp'] } }),
      (c) => c.HostConfig?.Tmpfs,
    ],
  ];
  for (const [field, change, read] of changes) {
    const changed = await interpret(change(structuredClone(recipe)));
    assert.notDeepEqual(read(changed), read(base), `${field} changed nothing in the container`);
  }
  // The scripts' digests are what the text that runs must match: another digest is refused.
  await assert.rejects(
    interpret({ ...recipe, scripts: { watchdog: 'f'.repeat(64) } }),
    /script watchdog with sha256 f{64}/,
  );
  await assert.rejects(interpret({ ...recipe, argv: ['@script:nope'] }), /script "nope" this kmatrix does not have/);
});

test('a target.json whose recipe this code would render differently is refused, naming the field', async () => {
  const target = await committed('debian-bookworm/6.1.0-57-amd64/x86_64');
  const edited: Target = {
    ...target,
    recipe: { ...target.recipe, argv: target.recipe.argv.map((a) => (a === 'modules' ? 'all' : a)) },
  };
  assert.throws(
    () => requireCurrentBuildRecipe(edited),
    (e: unknown) =>
      e instanceof StaleRecipeError &&
      e.differences.length === 1 &&
      e.differences[0]!.field === `recipe.argv[${target.recipe.argv.indexOf('modules')}]` &&
      /"all" → "modules"/.test(e.problems[0]!),
  );
  assert.deepEqual(buildRecipeDifferences(target), []);
  // The boot test's guest too: another QEMU argument than this code renders is refused.
  const lock = await loadGuestLock(repoRoot);
  const guest: Target = {
    ...target,
    boot: { ...target.boot, qemu: { ...target.boot.qemu, argv: [...target.boot.qemu.argv, '-s'] } },
  };
  assert.throws(
    () => requireCurrentBootRecipe(guest, lock),
    (e: unknown) =>
      e instanceof StaleRecipeError && /boot recipe/.test(e.message) && e.differences[0]!.field === 'boot.qemu.argv',
  );
  requireCurrentBootRecipe(target, lock);
});

test('`kmatrix cache explain` names the recipe field that differs, and a new RECIPE_VERSION', async () => {
  const target = await committed('debian-bookworm/6.1.0-57-amd64/x86_64');
  const inputs = (recipe: BuildRecipe, recipeVersion: number): BuildRecord['inputs'] => ({
    targetJsonSha256: '',
    toolchain: { name: 'debian-bookworm', image: `r@${recipe.image}` },
    headers: [],
    driverSources: {},
    make: recipe.argv,
    env: recipe.env,
    recipe,
    recipeVersion,
  });
  const then = inputs(target.recipe, 1);
  const now = inputs({ ...target.recipe, env: { ...target.recipe.env, TZ: 'Europe/Berlin' } }, 2);
  assert.deepEqual(
    compareInputs(then, now).map((d) => `${d.input}: ${d.detail}`),
    ['recipe: recipe.env.TZ: "UTC" → "Europe/Berlin"', 'recipe: RECIPE_VERSION: 1 → 2'],
  );
});

test("the build's copy of the driver is what Nx hashes: no git-ignored leftovers, no smoke test, links kept as links", async () => {
  const root = await mkdtemp(join(tmpdir(), 'kmatrix-source-'));
  try {
    const driver = join(root, 'drivers/d');
    await mkdir(join(driver, 'sub'), { recursive: true });
    for (const [f, text] of [
      ['main.c', 'int x;'],
      ['sub/part.c', 'int y;'],
      ['.gitignore', '*.o\n'],
      ['stale.o', 'an object a local make left'],
      ['smoke-test.sh', 'true'],
    ])
      await writeFile(join(driver, f!), text!);
    await symlink('main.c', join(driver, 'alias.c'));
    await execa('git', ['init', '-q'], { cwd: root });
    const mount = { kind: 'source' as const, path: 'drivers/d', exclude: ['smoke-test.sh'], to: '/build/src' };
    const scratch = join(root, 'scratch');
    await mkdir(scratch);
    const { sourceDir } = await materializeMounts([mount], { tree: async () => '', root, scratch });
    const copied = (await readdir(sourceDir!, { recursive: true })).sort();
    assert.deepEqual(copied, ['.gitignore', 'alias.c', 'main.c', 'sub', 'sub/part.c']);
    assert.equal(await readlink(join(sourceDir!, 'alias.c')), 'main.c');
    assert.deepEqual(Object.keys(await sourceDigests(root, { mounts: [mount] })).sort(), [
      '.gitignore',
      'main.c',
      'sub/part.c',
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
