/**
 * The nightly flow: regenerate from a new kernel list, `kmatrix diff` against the last published
 * state says what changed and why, and `nx affected` selects exactly those targets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createWorkspace, expectOk, repoRoot, type Workspace } from '../support/workspace.ts';

interface Entry {
  kernelrelease: string;
  kmatrix: { distro: string; flavour: string; abi: string; packages: { role: string; sha256: string }[] };
}

const policy = {
  drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } },
  distros: {
    'debian-bookworm': { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' },
    'debian-trixie': { family: 'deb', release: 'trixie', toolchain: 'debian-trixie' },
  },
  matrix: [
    { driver: 'kmx-echo', distro: 'debian-bookworm', archs: ['x86_64'], flavours: ['amd64'], kernels: ['6.1.0-*'] },
    {
      driver: 'kmx-echo',
      distro: 'debian-trixie',
      archs: ['x86_64'],
      flavours: ['amd64'],
      kernels: ['6.12.*'],
      latest: 2,
    },
  ],
};

async function realList(file: string): Promise<{ debian: Entry[] }> {
  return JSON.parse(await readFile(join(repoRoot, 'kernels', file), 'utf8'));
}

/** The build-driver tasks `nx affected` would run (its task graph, printed instead of run), and `nx show projects --affected`. */
async function affected(ws: Workspace, base: string): Promise<string[]> {
  const graph = expectOk(
    await ws.nx(['affected', '-t', 'build-driver', `--base=${base}`, '--head=HEAD', '--graph=stdout']),
    'nx affected --graph',
  );
  const tasks = Object.keys(JSON.parse(graph.stdout.slice(graph.stdout.indexOf('{'))).tasks.tasks)
    .map((id) => id.replace(/:build-driver$/, ''))
    .sort();
  const shown = expectOk(
    await ws.nx([
      'show',
      'projects',
      '--with-target',
      'build-driver',
      '--affected',
      `--base=${base}`,
      '--head=HEAD',
      '--json',
    ]),
    'nx show projects --affected',
  );
  assert.deepEqual((JSON.parse(shown.stdout) as string[]).sort(), tasks, 'nx show projects --affected agrees');
  return tasks;
}

const name = (release: string, distro = 'debian-bookworm') => `kmx-echo--${distro}--${release}--x86_64`;

test('after a nightly regenerate, diff names the 3 changed entries and nx affected runs exactly the 2 that still exist', {
  timeout: 10 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-diff-');
  t.after(() => ws.remove());
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));
  const bookworm = await realList('debian-bookworm-x86_64.json');
  const is61 = (e: Entry) => e.kmatrix.flavour === 'amd64' && e.kmatrix.abi.startsWith('6.1.0-');
  const abis = bookworm.debian.filter(is61).map((e) => e.kernelrelease); // oldest first
  assert.ok(abis.length >= 4, abis.join(' '));
  const [oldest, middle, newest] = [abis[0]!, abis[1]!, abis.at(-1)!];

  // Published state: the list as it was before the newest ABI appeared.
  await ws.write(
    'kernels/debian-bookworm-x86_64.json',
    JSON.stringify({ debian: bookworm.debian.filter((e) => e.kernelrelease !== newest) }),
  );
  expectOk(await ws.kmatrix(['gen']), 'gen (published)');
  await ws.commitAll('published matrix');
  await ws.git(['tag', 'published']);
  const clean = await ws.kmatrix(['diff', '--base', 'published']);
  assert.equal(clean.exitCode, 0, clean.all);
  assert.match(clean.stdout, /no differences from published/);

  // Tonight's list: the newest ABI appears, the oldest is gone, one header package was rebuilt (new SHA).
  const tonight = bookworm.debian
    .filter((e) => e.kernelrelease !== oldest)
    .map((e) =>
      e.kernelrelease !== middle
        ? e
        : {
            ...e,
            kmatrix: {
              ...e.kmatrix,
              packages: e.kmatrix.packages.map((p) => (p.role === 'flavour' ? { ...p, sha256: 'f'.repeat(64) } : p)),
            },
          },
    );
  await ws.write('kernels/debian-bookworm-x86_64.json', JSON.stringify({ debian: tonight }));
  const gen = expectOk(await ws.kmatrix(['gen']), 'gen (tonight)');
  assert.match(gen.all, /1 added, 1 changed, 1 removed/);

  const diff = await ws.kmatrix(['diff', '--base', 'published']);
  assert.equal(diff.exitCode, 1, 'exit 1: the matrix differs');
  assert.match(diff.stdout, new RegExp(`^\\+ ${name(newest).replace(/[.+]/g, '\\$&')}$`, 'm'));
  assert.match(diff.stdout, new RegExp(`^- ${name(oldest).replace(/[.+]/g, '\\$&')}$`, 'm'));
  assert.match(
    diff.stdout,
    new RegExp(
      `^~ ${name(middle).replace(/[.+]/g, '\\$&')}\\n    headers: linux-headers-${middle.replace(/[.+]/g, '\\$&')} \\S+: sha256 [0-9a-f]{12}… → ffffffffffff…$`,
      'm',
    ),
  );
  assert.match(diff.stdout, /3 targets differ from published: 1 added, 1 removed, 1 changed/);
  const json = JSON.parse((await ws.kmatrix(['diff', '--base', 'published', '--json'])).stdout);
  assert.deepEqual(json.added, [name(newest)]);
  assert.deepEqual(json.removed, [name(oldest)]);
  assert.deepEqual(
    json.changed.map((c: { name: string }) => c.name),
    [name(middle)],
  );
  assert.deepEqual(
    json.changed[0].changes.map((c: { input: string }) => c.input),
    ['headers'],
  );

  // Nx agrees: the added and the changed target; the removed one has no project (nothing to run).
  await ws.commitAll('nightly regenerate');
  assert.deepEqual(await affected(ws, 'published'), [name(middle), name(newest)].sort());
  // The removed target left a marker (a deleted project file would make Nx re-run every task).
  const marker = JSON.parse(await ws.read(`targets/kmx-echo/debian-bookworm/${oldest}/x86_64/target.json`));
  assert.deepEqual([marker.removed, marker.name], [true, name(oldest)]);
  const gone = await ws.kmatrix(['build', name(oldest)]);
  assert.equal(gone.exitCode, 1);
  assert.match(gone.stderr, /was removed from the matrix/);
  const pruned = expectOk(await ws.kmatrix(['gen', '--prune-removed']), 'gen --prune-removed');
  assert.match(pruned.all, /1 removed-target marker pruned/);
  assert.equal(
    await ws.read(`targets/kmx-echo/debian-bookworm/${oldest}/x86_64/target.json`).catch(() => 'deleted'),
    'deleted',
  );

  const bad = await ws.kmatrix(['diff', '--base', 'no-such-ref']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /"no-such-ref" is not a commit of this repository/);
});

test('changing one toolchain selects exactly the targets built with it', { timeout: 10 * 60_000 }, async (t) => {
  const ws = await createWorkspace('kmatrix-diff-tc-');
  t.after(() => ws.remove());
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));
  expectOk(await ws.kmatrix(['gen']), 'gen');
  await ws.commitAll('published matrix');
  const projects: string[] = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  );
  const trixie = projects.filter((p) => p.includes('--debian-trixie--')).sort();
  assert.equal(trixie.length, 2);
  assert.ok(projects.length > trixie.length);

  // A new toolchain image for trixie (re-pinned lock), then gen carries the digest into its targets.
  const lockFile = 'toolchains/debian-trixie/toolchain.lock.json';
  const lock = JSON.parse(await ws.read(lockFile));
  const packages = { ...lock.packages, make: `${lock.packages.make}+rebuilt` };
  await ws.write(lockFile, JSON.stringify({ ...lock, digest: `sha256:${'e'.repeat(64)}`, packages }, null, 2));
  const gen = expectOk(await ws.kmatrix(['gen']), 'gen');
  assert.match(gen.all, /0 added, 2 changed, 0 removed/);
  const diff = JSON.parse((await ws.kmatrix(['diff', '--base', 'HEAD', '--json'])).stdout);
  assert.deepEqual(
    diff.changed.map((c: { name: string }) => c.name),
    trixie,
  );
  for (const c of diff.changed) {
    assert.deepEqual([...new Set(c.changes.map((x: { input: string }) => x.input))], ['toolchain']);
    // Which package of the image changed, by name and version.
    assert.ok(
      c.changes.some((x: { detail: string }) => x.detail === `package make: ${lock.packages.make} → ${packages.make}`),
      JSON.stringify(c.changes),
    );
  }
  await ws.commitAll('re-pin trixie toolchain');
  assert.deepEqual(await affected(ws, 'HEAD~1'), trixie);
});
