/**
 * A toolchain is the same image on every machine. Machine A (this machine's registry) builds a
 * target and fills the cache server. Machine B — its own OCI registry on another port, its own
 * header store, a fresh clone — builds the same toolchain from scratch: it gets the committed
 * digest, changes no lock and no target.json, and its nx run is all remote-cache hits. Then the
 * archive "moves on" (a pinned version the archive no longer serves): the build says which package
 * and writes nothing, and --update re-pins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nxCacheEnv, READ_TOKEN, startCacheServer, WRITE_TOKEN } from '../support/cache-server.ts';
import { cacheHits, cloneWorkspace, createWorkspace, expectOk, prepareOneTarget } from '../support/workspace.ts';
import { freePort } from '../support/http.ts';

/** Debian's docker-registry on its own port and storage: machine B's registry. */
async function secondRegistry(dir: string): Promise<{ address: string; stop: () => void }> {
  const port = await freePort();
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'registry.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const address = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://${address}/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return { address, stop: () => child.kill() };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`the second registry did not start on ${address}`);
}

test('a toolchain built on another machine into another registry has the committed digest', {
  timeout: 20 * 60_000,
}, async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-identity-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const cache = await startCacheServer(join(scratch, 'cache'));
  t.after(() => cache.stop());

  // Machine A: this machine's registry and header store; builds one target into the cache.
  const a = await createWorkspace('kmatrix-machine-a-');
  t.after(() => a.remove());
  await prepareOneTarget(a);
  const built = expectOk(
    await a.nx(['run-many', '-t', 'build-driver', '--output-style=static'], nxCacheEnv(cache.url, WRITE_TOKEN)),
    'machine A builds',
  );
  assert.deepEqual(cacheHits(built.all), { hits: 0, total: 1 });

  // Machine B: another registry, another header store, a fresh clone.
  const registry = await secondRegistry(join(scratch, 'registry-b'));
  t.after(() => registry.stop());
  const b = await cloneWorkspace(a, 'kmatrix-machine-b-');
  t.after(() => b.remove());
  const machineB = { KMATRIX_REGISTRY: registry.address, KMATRIX_STORE: join(scratch, 'store-b') };
  const lockFile = 'toolchains/debian-bookworm/toolchain.lock.json';
  const committed = JSON.parse(await b.read(lockFile));
  const toolchain = expectOk(
    await b.kmatrix(['toolchain', 'build', 'debian-bookworm'], machineB),
    'machine B builds the toolchain',
  );
  assert.match(toolchain.all, /mmdebstrap bookworm amd64/, 'built from scratch, not reused');
  assert.equal(toolchain.stdout.trim(), `${registry.address}/kmatrix/debian-bookworm@${committed.digest}`);
  assert.equal((await b.git(['status', '--porcelain'])).stdout, '', 'no lock and no target.json changed');
  const restored = expectOk(
    await b.nx(['run-many', '-t', 'build-driver', '--output-style=static'], {
      ...machineB,
      ...nxCacheEnv(cache.url, READ_TOKEN),
    }),
    'machine B restores',
  );
  assert.deepEqual(cacheHits(restored.all), { hits: 1, total: 1 }, 'all from the cache machine A filled');

  // The archive moved on: the lock pins a version it no longer serves. Named, nothing written.
  const moved = structuredClone(committed);
  moved.packages.make = '4.3-0-gone';
  await b.write(lockFile, `${JSON.stringify(moved, null, 2)}\n`);
  const refused = await b.kmatrix(['toolchain', 'build', 'debian-bookworm', '--force'], machineB);
  assert.equal(refused.exitCode, 1, refused.all);
  assert.match(refused.all, /no longer serves the package versions toolchain debian-bookworm is pinned to/);
  assert.match(refused.all, new RegExp(`make: 4\\.3-0-gone → ${committed.packages.make.replace(/[.+]/g, '\\$&')}`));
  assert.deepEqual(JSON.parse(await b.read(lockFile)), moved, 'the lock is as it was');
  const updated = expectOk(
    await b.kmatrix(['toolchain', 'build', 'debian-bookworm', '--update'], machineB),
    'toolchain build --update',
  );
  assert.match(updated.stdout, new RegExp(`@${committed.digest}$`, 'm'));
  assert.deepEqual(JSON.parse(await b.read(lockFile)), committed, 're-pinned to what the archive serves');
});
