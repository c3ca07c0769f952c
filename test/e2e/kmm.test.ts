/**
 * Kubernetes clusters with the KMM operator, as a cluster admin gets them: a built matrix is
 * published with a kmod image per target into a registry (deterministic: a rebuild with the same
 * module bytes gives the same image digest), the driver's Module manifest maps exactly the
 * published kernels, and each image, booted on its target's own kernel the way KMM's worker uses
 * it, loads its module and passes the smoke test — amd64 and arm64.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { BOOT_POLICY, createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';
import { signingKey } from '../support/keys.ts';
import { pullLayers } from '../../tools/kmatrix/core/oci-registry.ts';

const REGISTRY = process.env.KMATRIX_REGISTRY ?? '127.0.0.1:5000';

test('a built matrix becomes KMM kmod images, a Module that maps its kernels, and modules a booted kernel loads from the images', {
  timeout: 20 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-kmm-');
  t.after(() => ws.remove());
  await preparePipeline(ws, BOOT_POLICY);
  const names: string[] = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'show projects').stdout,
  );
  expectOk(await ws.nx(['run-many', '-t', 'build-driver']), 'build the matrix');

  const repository = `${REGISTRY}/kmm-${randomBytes(4).toString('hex')}/kmx-echo`;
  const store = join(ws.dir, '.published');
  const publish = (storeDir = store) => ws.kmatrix(['publish', '--store', storeDir, '--kmm', repository]);
  const first = expectOk(await publish(), 'publish --kmm');
  assert.match(first.stdout, new RegExp(`kmm: ${names.length} images pushed, 0 unchanged`));
  const index = JSON.parse(await ws.read('.published/index.json'));
  const images = new Map<string, { image: string; tag: string; kernel: string }>(
    Object.entries(index.targets).map(([n, e]) => [
      n,
      (e as { kmm: { image: string; tag: string; kernel: string } }).kmm,
    ]),
  );
  for (const name of names) {
    const kmm = images.get(name)!;
    const release = name.split('--')[2]!;
    assert.equal(kmm.kernel, release);
    assert.equal(kmm.tag, release.replace(/[^A-Za-z0-9._-]/g, '_'));
    assert.match(kmm.image, new RegExp(`^${repository.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}$`));
    // The registry serves it under its tag, with the module and depmod's output under /opt/lib/modules/<kernel>/.
    const manifest = await fetch(
      `http://${REGISTRY}/v2/${repository.slice(REGISTRY.length + 1)}/manifests/${kmm.tag}`,
      {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      },
    );
    assert.equal(manifest.headers.get('docker-content-digest'), kmm.image.split('@')[1]);
    const layer = ((await manifest.json()) as { layers: { digest: string }[] }).layers[0]!.digest;
    const blob = Buffer.from(
      await (
        await fetch(`http://${REGISTRY}/v2/${repository.slice(REGISTRY.length + 1)}/blobs/${layer}`)
      ).arrayBuffer(),
    );
    const listing = (await execa('tar', ['tvf', '-'], { input: blob })).stdout;
    for (const f of ['kmx_echo.ko', 'modules.dep', 'modules.dep.bin', 'modules.alias.bin'])
      assert.match(
        listing,
        new RegExp(` opt/lib/modules/${release.replace(/[.+]/g, '\\$&')}/${f.replace('.', '\\.')}$`, 'm'),
      );
    for (const tool of ['sh', 'mkdir', 'cp']) assert.match(listing, new RegExp(` bin/${tool} -> busybox$`, 'm'));
    assert.match(listing, /^-rwxr-xr-x 0\/0 .* 1970-01-01 00:00 bin\/busybox$/m);
  }

  // Publishing again pushes nothing; a rebuild with the same module bytes gives the very same images.
  assert.match(
    expectOk(await publish(), 'publish --kmm again').stdout,
    new RegExp(`kmm: 0 images pushed, ${names.length} unchanged`),
  );
  await rm(join(ws.dir, 'dist/targets'), { recursive: true, force: true });
  expectOk(await ws.nx(['run-many', '-t', 'build-driver', '--skip-nx-cache']), 'rebuild every target');
  expectOk(await publish(join(ws.dir, '.published-again')), 'publish the rebuild --kmm');
  const again = JSON.parse(await ws.read('.published-again/index.json'));
  for (const name of names)
    assert.equal(again.targets[name].kmm.image, images.get(name)!.image, `${name}: same bytes, same image`);

  // The Module: one literal mapping per published kernel, images by digest.
  const yaml = expectOk(
    await ws.kmatrix(['kmm', 'manifest', 'kmx-echo', '--store', store, '--namespace', 'kmm-operator-system']),
    'kmm manifest',
  );
  const module = parse(yaml.stdout);
  assert.equal(module.kind, 'Module');
  assert.deepEqual(
    module.spec.moduleLoader.container.kernelMappings
      .map((k: { literal: string; containerImage: string }) => [k.literal, k.containerImage])
      .sort(),
    names.map((n) => [images.get(n)!.kernel, images.get(n)!.image]).sort(),
  );
  assert.equal(module.spec.moduleLoader.container.modprobe.moduleName, 'kmx_echo');

  // Each arch: the image, booted on its target's kernel the way KMM's worker uses it.
  for (const arch of ['x86_64', 'aarch64']) {
    const name = names.find((n) => n.endsWith(`--${arch}`) && n.includes('--6.1.0-'))!;
    const boot = await ws.kmatrix(['kmm', 'boot', name, '--store', store]);
    assert.equal(boot.exitCode, 0, boot.all);
    assert.match(boot.stdout, /loads ✓ — insmod ok, smoke test ok, rmmod ok/);
    const console = await ws.read(join('dist/kmm', name, 'console.log'));
    assert.match(
      console,
      /KMX-RESULT step kmm-extract\r?\nKMX-RESULT step insmod kmx_echo\r?\nKMX-RESULT insmod-ok kmx_echo/,
    );
    const result = JSON.parse(await ws.read(join('dist/kmm', name, 'result.json')));
    assert.equal(result.kmodImage, images.get(name)!.image);
  }

  // With module signing on, the image carries the signed module under the module's own name.
  const key = await signingKey(ws.dir, 'kmatrix-kmm-signing');
  const signedRepository = `${repository}-signed`;
  expectOk(
    await ws.kmatrix(['publish', '--store', join(ws.dir, '.published-signed'), '--kmm', signedRepository], key),
    'publish --kmm, signing',
  );
  const signed = JSON.parse(await ws.read('.published-signed/index.json'));
  const one = names[0]!;
  const entry = signed.targets[one];
  const { layers } = await pullLayers(signedRepository, entry.kmm.image.split('@')[1]);
  const unpacked = join(ws.dir, '.signed-image');
  await mkdir(unpacked);
  await execa('tar', ['xf', '-', '-C', unpacked], { input: layers[0] });
  const ko = await readFile(join(unpacked, 'opt/lib/modules', entry.kmm.kernel, 'kmx_echo.ko'));
  assert.equal(createHash('sha256').update(ko).digest('hex'), entry.modules[0].signed.sha256);
  assert.equal(ko.subarray(-28).toString('latin1'), '~Module signature appended~\n');
  assert.notEqual(entry.kmm.image.split('@')[1], images.get(one)!.image.split('@')[1]);

  // An image of another kernel is refused before anything boots; a node's unknown kernel has no mapping.
  const [x86, other] = names.filter((n) => n.endsWith('--x86_64'));
  const wrong = await ws.kmatrix(['kmm', 'boot', x86!, '--store', store, '--image', images.get(other!)!.image]);
  assert.equal(wrong.exitCode, 1, wrong.all);
  assert.match(wrong.stderr, /the image holds no opt\/lib\/modules\/.*this is not the kmod image of this target/s);
});
