/**
 * A new distro family is a folder under distros/, its line in the registry and its toolchain:
 * nothing else in kmatrix changes. The test adds "mini" (test/fixtures/distro-family), a family
 * with its own archive format and package roles, to a workspace exactly that way, then crawls,
 * generates and builds a real module through it.
 */
import { test } from 'node:test';
import { repositoryFor } from '../../tools/kmatrix/model/toolchain.ts';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startServer } from '../support/http.ts';
import { createWorkspace, expectOk, preparePipeline, repoRoot } from '../support/workspace.ts';

interface Listed {
  kernelrelease: string;
  kmatrix: {
    abi: string;
    flavour: string;
    packageVersion: string;
    gcc?: string;
    packages: { role: string; hostArch?: string }[];
  };
}

const MINI_ROLE: Record<string, string> = { flavour: 'tree', common: 'shared', kbuild: 'tools' };

test('a family added as a folder plus a registry line crawls, generates and builds a real module', async (t) => {
  const ws = await createWorkspace('kmatrix-family-');
  t.after(() => ws.remove());
  await preparePipeline(ws);

  // mini's archive: one index naming real bookworm headers under mini's own roles.
  const debian = JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json')).debian as Listed[];
  const kernel = debian.filter((k) => k.kmatrix.flavour === 'amd64' && k.kmatrix.abi.startsWith('6.1.0-')).at(-1)!;
  const index = [
    {
      kernelrelease: kernel.kernelrelease,
      abi: kernel.kmatrix.abi,
      flavour: 'plain',
      version: kernel.kmatrix.packageVersion,
      gcc: kernel.kmatrix.gcc ?? '12',
      packages: kernel.kmatrix.packages.map((p) => ({ ...p, role: MINI_ROLE[p.role]! })),
    },
  ];
  const archive = await startServer((req, res) => {
    if (req.url !== '/one/x86_64/index.json') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(index));
  });
  t.after(() => archive.close());

  // The family's folder, its registry line, its toolchain (pinned to the image debian-bookworm
  // was just built as) and a policy distro of it.
  await ws.write(
    'tools/kmatrix/distros/mini/family.ts',
    await readFile(join(repoRoot, 'test/fixtures/distro-family/family.ts.in'), 'utf8'),
  );
  const registry = await ws.read('tools/kmatrix/distros/registry.ts');
  await ws.write(
    'tools/kmatrix/distros/registry.ts',
    registry
      .replace(
        "import { deb } from './deb/family.ts';",
        "import { deb } from './deb/family.ts';\nimport { mini } from './mini/family.ts';",
      )
      .replace(/= \[(.*)\];/, '= [$1, mini];'),
  );
  const toolchain = JSON.parse(await ws.read('toolchains/debian-bookworm/toolchain.json'));
  await ws.write(
    'toolchains/mini-one/toolchain.json',
    JSON.stringify({ ...toolchain, distro: 'mini-one', targetArchs: ['x86_64'] }, null, 2),
  );
  // Pinned to debian-bookworm's image: the same digest, from that toolchain's repository.
  const bookwormLock = JSON.parse(await ws.read('toolchains/debian-bookworm/toolchain.lock.json'));
  await ws.write(
    'toolchains/mini-one/toolchain.lock.json',
    JSON.stringify({ ...bookwormLock, repository: repositoryFor('debian-bookworm') }, null, 2),
  );
  const policy = JSON.parse(await ws.read('support-matrix.json'));
  policy.distros['mini-one'] = { family: 'mini', release: 'one', toolchain: 'mini-one' };
  policy.matrix.push({
    driver: 'kmx-echo',
    distro: 'mini-one',
    archs: ['x86_64'],
    flavours: ['plain'],
    kernels: ['6.1.0-*'],
  });
  await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));

  // The family compiles against the DistroFamily interface like any module of the library.
  const tsc = await execa(join(ws.dir, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.base.json', '--noEmit'], {
    cwd: ws.dir,
    reject: false,
    all: true,
  });
  assert.equal(tsc.exitCode, 0, tsc.all);

  const env = { KMATRIX_MINI_ARCHIVE: archive.url };
  const help = expectOk(await ws.kmatrix(['crawl', '--help'], env), 'crawl --help');
  assert.match(help.stdout, /mini\s+one JSON index per release and arch/);
  expectOk(await ws.kmatrix(['crawl', 'mini', '--no-check'], env), 'kmatrix crawl mini');
  const listed = JSON.parse(await ws.read('kernels/mini-one-x86_64.json'));
  assert.deepEqual(Object.keys(listed), ['mini']);
  assert.deepEqual(listed.mini[0].kmatrix.packages.map((p: { role: string }) => p.role).sort(), [
    'shared',
    'tools',
    'tree',
  ]);

  const gen = expectOk(await ws.kmatrix(['gen'], env), 'kmatrix gen');
  const name = `kmx-echo--mini-one--${kernel.kernelrelease}--x86_64`;
  assert.match(gen.stderr, new RegExp(`\\+ ${name.replace(/[.+]/g, '\\$&')}`));
  const target = JSON.parse(await ws.read(`targets/kmx-echo/mini-one/${kernel.kernelrelease}/x86_64/target.json`));
  assert.equal(target.kernelDir, `/usr/src/linux-headers-${kernel.kernelrelease}`);
  assert.deepEqual(
    target.headers.map((h: { role: string }) => h.role),
    ['shared', 'tools', 'tree'],
  );

  // Nothing outside the family's folder, its registry line, its toolchain and the user's own
  // files (the policy, the kernel list, the generated targets) had to change.
  const changed = (await ws.git(['status', '--porcelain', '--untracked-files=all'])).stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3));
  const allowed = [
    /^tools\/kmatrix\/distros\/mini\//,
    /^tools\/kmatrix\/distros\/registry\.ts$/,
    /^toolchains\/mini-one\//,
    /^support-matrix\.json$/,
    /^kernels\/mini-one-x86_64\.json$/,
    /^targets\/kmx-echo\/mini-one\//,
  ];
  assert.deepEqual(
    changed.filter((f) => !allowed.some((a) => a.test(f))),
    [],
  );
  assert.ok(changed.some((f) => f.startsWith('tools/kmatrix/distros/mini/')));

  // The build mounts mini's packages where mini says and produces a module for that very kernel.
  expectOk(await ws.nx(['run', `${name}:build-driver`], env), 'build the mini target');
  const build = JSON.parse(await ws.read(`dist/targets/kmx-echo/mini-one/${kernel.kernelrelease}/x86_64/build.json`));
  assert.equal(build.outputs.length, 1);
  assert.equal(build.outputs[0].vermagic.split(' ')[0], kernel.kernelrelease);
});
