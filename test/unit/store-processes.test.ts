/**
 * The header store shared by processes, as Nx runs one process per task: two builds that need the
 * same package at the same moment download it once, and both find the unpacked tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startServer } from '../support/http.ts';
import { repoRoot } from '../support/workspace.ts';

test('two processes asking for one package at once: one download, one tree, both succeed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-store-procs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // A real .deb, as dpkg-deb makes it.
  const root = join(dir, 'pkg');
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr/src/linux-headers-1.0.0-1-common'), { recursive: true });
  await writeFile(join(root, 'usr/src/linux-headers-1.0.0-1-common/Makefile'), 'all:\n');
  await writeFile(
    join(root, 'DEBIAN/control'),
    'Package: linux-headers-1.0.0-1-common\nVersion: 1.0.0-1\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n',
  );
  await execa('dpkg-deb', ['--build', '--root-owner-group', root, join(dir, 'p.deb')]);
  const deb = await readFile(join(dir, 'p.deb'));
  // The server answers only once the second process is seen waiting (or after 20 s): both ask
  // before either has the package, however slowly each starts.
  let seeWaiting: () => void = () => {};
  const waiting = new Promise<void>((resolve) => {
    seeWaiting = resolve;
    setTimeout(resolve, 20_000);
  });
  const server = await startServer((_req, res) => {
    void waiting.then(() => res.writeHead(200, { 'content-length': deb.length }).end(deb));
  });
  t.after(() => server.close());
  const pkg = {
    role: 'common',
    name: 'linux-headers-1.0.0-1-common',
    version: '1.0.0-1',
    url: `${server.url}/p.deb`,
    sha256: createHash('sha256').update(deb).digest('hex'),
    size: deb.length,
  };
  const store = join(dir, 'store');
  const task = join(repoRoot, 'test/support/header-fetch-task.ts');
  const run = () => {
    const child = execa(process.execPath, [task, store], { input: JSON.stringify([pkg]), all: true });
    child.stderr!.on('data', (b: Buffer) => {
      if (b.toString().includes('waiting for another kmatrix')) seeWaiting();
    });
    return child;
  };
  const [a, b] = await Promise.all([run(), run()]);
  assert.equal(server.hits.get('/p.deb'), 1, `${a.all}\n${b.all}`);
  assert.match(`${a.all}\n${b.all}`, /waiting for another kmatrix fetching linux-headers-1\.0\.0-1-common 1\.0\.0-1/);
  assert.ok(existsSync(join(store, 'trees', pkg.sha256, 'usr/src/linux-headers-1.0.0-1-common/Makefile')));
});
