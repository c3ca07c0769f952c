/**
 * Publishing: built modules go to an artifact store (a directory, and S3 through a real
 * S3-compatible server on 127.0.0.1) with provenance and optional signatures made by the kernel's
 * own sign-file; publishing again changes nothing; a key never gets other bytes; `kmatrix verify`
 * checks what a node downloads; `kmatrix diff --published` compares the matrix with the store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createWorkspace, expectOk, preparePipeline } from '../support/workspace.ts';
import { startS3 } from '../support/s3.ts';
import { serveDirectory } from '../support/http.ts';
import { signingKey } from '../support/keys.ts';

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

test('publish uploads modules with provenance and signatures, idempotently, never overwriting; verify and diff --published read it', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-publish-');
  t.after(() => ws.remove());
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-publish-store-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  await preparePipeline(ws);
  expectOk(await ws.nx(['run-many', '-t', 'build-driver']), 'nx run-many -t build-driver');
  const names = JSON.parse(
    expectOk(await ws.nx(['show', 'projects', '--with-target', 'build-driver', '--json']), 'nx show projects').stdout,
  ) as string[];
  assert.equal(names.length, 4);
  const key = await signingKey(scratch, 'kmatrix-test-signing');
  const store = join(scratch, 'store');

  // First publish: every module, signed, with its provenance, then the index.
  const first = expectOk(await ws.kmatrix(['publish', '--store', store], key), 'kmatrix publish');
  assert.match(first.stdout, /4 published, 0 unchanged; index: /);
  const files = await filesUnder(store);
  assert.equal(files.filter((f) => f.endsWith('/kmx_echo.ko')).length, 4, files.join('\n'));
  assert.equal(files.filter((f) => f.endsWith('/kmx_echo.signed.ko')).length, 4);
  assert.equal(files.filter((f) => f.endsWith('/provenance.unsigned.dsse.json')).length, 4);
  const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8'));
  assert.deepEqual(Object.keys(index.targets).sort(), [...names].sort());
  const entry = index.targets[names[0]!];
  const built = JSON.parse(
    await ws.read(`dist/targets/kmx-echo/debian-bookworm/${entry.target.kernelrelease}/x86_64/build.json`),
  );
  assert.equal(entry.modules[0].sha256, built.outputs[0].sha256, 'the index names the built bytes');
  const envelope = JSON.parse(await readFile(join(store, entry.provenance.key), 'utf8'));
  assert.equal(envelope.payloadType, 'application/vnd.in-toto+json');
  const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
  assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
  assert.equal(statement.predicateType, 'https://slsa.dev/provenance/v1');
  assert.deepEqual(statement.subject, [{ name: 'kmx_echo.ko', digest: { sha256: built.outputs[0].sha256 } }]);
  const deps = statement.predicate.buildDefinition.resolvedDependencies as {
    name?: string;
    digest: Record<string, string>;
  }[];
  assert.equal(
    deps.find((d) => d.name?.startsWith('toolchain:'))?.digest.sha256,
    built.inputs.toolchain.image.split('@sha256:')[1],
  );
  for (const h of built.inputs.headers)
    assert.ok(
      deps.some((d) => d.digest.sha256 === h.sha256),
      `provenance names ${h.name}`,
    );
  const head = (await ws.git(['rev-parse', 'HEAD'])).stdout.trim();
  assert.ok(
    deps.some((d) => d.digest.gitCommit === head),
    'and the commit',
  );

  // Publishing again is a no-op: same index bytes, nothing uploaded.
  const indexBytes = await readFile(join(store, 'index.json'));
  const again = expectOk(await ws.kmatrix(['publish', '--store', store, '--json'], key), 'kmatrix publish (again)');
  assert.match(again.stderr, /^0 published, 4 unchanged/m);
  const againDoc = JSON.parse(again.stdout);
  assert.deepEqual(
    [againDoc.command, againDoc.ok, againDoc.result.published, againDoc.result.unchanged.length],
    ['publish', true, [], 4],
  );
  assert.deepEqual(await readFile(join(store, 'index.json')), indexBytes);

  // A node checks what it downloaded.
  const signed = join(store, entry.modules[0].signed.key);
  const ok = await ws.kmatrix(['verify', signed, '--store', store, '--cert', key.KMATRIX_SIGN_CERT_FILE]);
  assert.equal(ok.exitCode, 0, ok.all);
  assert.match(
    ok.stdout,
    /✓ published .*\n✓ signed by {2}nobody \(unsigned envelope\)\n✓ provenance subject "kmx_echo.ko"[^\n]*toolchain oci:\/\/[^\n]*3 header packages[^\n]*\n✓ vermagic .*\n✓ signature {2}valid PKCS#7 signature/,
  );
  const stranger = await signingKey(scratch, 'someone-else');
  const wrongKey = await ws.kmatrix(['verify', signed, '--cert', stranger.KMATRIX_SIGN_CERT_FILE]);
  assert.equal(wrongKey.exitCode, 1);
  assert.match(wrongKey.stdout, /✗ signature {2}signature does not verify/);
  const tampered = join(scratch, 'tampered.ko');
  await copyFile(join(store, entry.modules[0].key), tampered);
  const bytes = await readFile(tampered);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
  await writeFile(tampered, bytes);
  const bad = await ws.kmatrix(['verify', tampered, '--store', store]);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stdout, /✗ published +no target in .* has a module with these bytes/);
  assert.match(bad.stdout, /NOT verified/);

  // Installable packages and the stable per-kernel address: a node fetches by `uname -r` alone.
  const packaged = expectOk(
    await ws.kmatrix(['publish', '--store', store, '--packages', 'deb', '--json'], key),
    'publish --packages deb',
  );
  assert.equal(JSON.parse(packaged.stdout).result.packages.built.length, 4);
  const withPackages = JSON.parse(await readFile(join(store, 'index.json'), 'utf8')).targets[names[0]!];
  const [deb] = withPackages.packages;
  const kr = withPackages.target.kernelrelease as string;
  assert.equal(deb.format, 'deb');
  assert.equal(deb.name, `kmx-echo-modules-${kr}`);
  assert.match(
    deb.key,
    new RegExp(`^modules/kmx-echo/debian-bookworm/${kr.replace(/[.+]/g, '\\$&')}/x86_64/[0-9a-f]{16}/`),
  );
  const latestDir = join(store, 'modules/kmx-echo/debian-bookworm', kr, 'x86_64');
  const latest = JSON.parse(await readFile(join(latestDir, 'latest.json'), 'utf8'));
  assert.deepEqual(
    [latest.target, latest.buildId, latest.packages[0].sha256, latest.modules[0].signed.sha256],
    [names[0], withPackages.buildId, deb.sha256, withPackages.modules[0].signed.sha256],
  );
  const again2 = expectOk(await ws.kmatrix(['publish', '--store', store, '--packages', 'deb'], key), 'again');
  assert.match(again2.stdout, /packages: 0 made, 4 unchanged/);
  const packagedIndex = await readFile(join(store, 'index.json'));

  // The node-side script, over HTTP: the signed module under its own name, checked; then the package.
  const served = await serveDirectory(store);
  t.after(() => served.close());
  const osRelease = join(scratch, 'os-release');
  await writeFile(osRelease, 'ID=debian\nVERSION_CODENAME=bookworm\n');
  const fetchScript = (out: string, ...args: string[]) =>
    execa('sh', [join(ws.dir, 'tools/kmatrix-fetch.sh'), served.url, 'kmx-echo', '--out', out, ...args], {
      reject: false,
      all: true,
      env: { KMATRIX_KERNEL: kr, KMATRIX_ARCH: 'x86_64', KMATRIX_OS_RELEASE: osRelease },
    });
  const fetched = await fetchScript(join(scratch, 'node'));
  assert.equal(fetched.exitCode, 0, fetched.all);
  assert.equal(fetched.stdout, join(scratch, 'node/kmx_echo.ko'));
  assert.equal(
    createHash('sha256')
      .update(await readFile(join(scratch, 'node/kmx_echo.ko')))
      .digest('hex'),
    withPackages.modules[0].signed.sha256,
  );
  const pkg = await fetchScript(join(scratch, 'node'), '--package');
  assert.equal(pkg.stdout, join(scratch, `node/${deb.file}`), pkg.all);
  const nothing = await fetchScript(join(scratch, 'node'), '--distro', 'debian-trixie');
  assert.equal(nothing.exitCode, 1);
  assert.match(nothing.stderr, /nothing published for kmx-echo on debian-trixie/);
  const debBytes = await readFile(join(store, deb.key));
  await writeFile(join(store, deb.key), Buffer.concat([debBytes, Buffer.from('x')]));
  const tamperedPkg = await fetchScript(join(scratch, 'tampered'), '--package');
  assert.equal(tamperedPkg.exitCode, 1);
  assert.match(tamperedPkg.stderr, /does not match its published SHA256; nothing kept/);
  assert.ok(!existsSync(join(scratch, 'tampered', deb.file)), 'nothing kept');
  await writeFile(join(store, deb.key), debBytes);

  // Installed with dpkg -i in a real Debian container (the toolchain image): files, depmod, modinfo.
  const image = `${withPackages.inputs.toolchain.image}`;
  const installed = await execa(
    'docker',
    [
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      `${store}:/store:ro`,
      '-v',
      `${join(ws.dir, 'tools/kmatrix-fetch.sh')}:/kmatrix-fetch.sh:ro`,
      '-e',
      `KMATRIX_KERNEL=${kr}`,
      '-e',
      'KMATRIX_ARCH=x86_64',
      image,
      'sh',
      '-c',
      `set -e; sh /kmatrix-fetch.sh /store kmx-echo --install --out /tmp/p; dpkg -s ${deb.name} | grep '^Status:';
       modinfo -F signer /lib/modules/${kr}/updates/kmx_echo.ko; grep -c '^updates/kmx_echo.ko:' /lib/modules/${kr}/modules.dep;
       dpkg -r ${deb.name} >/dev/null; test ! -e /lib/modules/${kr}/updates/kmx_echo.ko; grep -c kmx_echo /lib/modules/${kr}/modules.dep || true`,
    ],
    { reject: false, all: true },
  );
  assert.equal(installed.exitCode, 0, installed.all);
  assert.match(installed.stdout, /^Status: install ok installed$/m);
  assert.match(installed.stdout, /^kmatrix-test-signing$/m, 'the signed module, signed by the test key');
  assert.deepEqual(installed.stdout.trim().split('\n').slice(-2), ['1', '0'], 'depmod on install and on removal');

  // The published state is what diff compares against: nothing yet, then a driver change.
  const clean = await ws.kmatrix(['diff', '--published', store]);
  assert.equal(clean.exitCode, 0, clean.all);
  const original = await ws.read('drivers/kmx-echo/kmx_echo_main.c');
  await ws.write('drivers/kmx-echo/kmx_echo_main.c', `${original}\n/* a comment */\n`);
  await ws.commitAll('driver change');
  const changed = await ws.kmatrix(['diff', '--published', store, '--json']);
  assert.equal(changed.exitCode, 1, changed.all);
  const diff = JSON.parse(changed.stdout);
  assert.equal(diff.changed.length, 4);
  assert.deepEqual(diff.changed[0].changes, [{ input: 'source', detail: 'changed: drivers/kmx-echo/kmx_echo_main.c' }]);

  // dist/ still holds the builds of the old sources: they are not the new state.
  const notBuilt = await ws.kmatrix(['publish', '--store', store], key);
  assert.equal(notBuilt.exitCode, 1);
  assert.match(
    notBuilt.stderr,
    new RegExp(
      `! ${names[0]!.replace(/[.+]/g, '\\$&')}: the build in dist/ is of other driver sources — kept at its last published state`,
    ),
  );
  assert.match(notBuilt.stdout, /0 published, 0 unchanged, 4 not built/);
  assert.deepEqual(await readFile(join(store, 'index.json')), packagedIndex, 'the index did not change');
  await ws.write('drivers/kmx-echo/kmx_echo_main.c', original);
  await ws.commitAll('back to the published driver');

  // Other bytes under a published key (here: the published file was altered, and the index lost
  // its entry) stop the publish; the key and the index stay as they were.
  const victim = index.targets[names[1]!];
  await writeFile(join(store, victim.modules[0].key), Buffer.from('not the module'));
  const lost = { ...index, targets: { ...index.targets } };
  delete lost.targets[names[1]!];
  const lostBytes = Buffer.from(`${JSON.stringify(lost, null, 2)}\n`);
  await writeFile(join(store, 'index.json'), lostBytes);
  const conflict = await ws.kmatrix(['publish', '--store', store, '--partial'], key);
  assert.equal(conflict.exitCode, 1, conflict.all);
  assert.match(
    conflict.stderr,
    /1 artifact would be overwritten with different bytes; nothing was published to the index/,
  );
  assert.match(conflict.stderr, /kmx_echo\.ko already holds other bytes than this module/);
  assert.deepEqual(await readFile(join(store, victim.modules[0].key)), Buffer.from('not the module'));
  assert.deepEqual(await readFile(join(store, 'index.json')), lostBytes);

  // Bad input: a store kmatrix cannot write to, and uncommitted changes.
  const ftp = await ws.kmatrix(['publish', '--store', 'ftp://example.invalid/x']);
  assert.equal(ftp.exitCode, 1);
  assert.match(
    ftp.stderr,
    /unsupported artifact store "ftp:\/\/example.invalid\/x"[\s\S]*--store DIR or --store s3:\/\/bucket\/prefix/,
  );
  await ws.write('drivers/kmx-echo/kmx_echo_main.c', 'uncommitted\n');
  const dirty = await ws.kmatrix(['publish', '--store', store]);
  assert.equal(dirty.exitCode, 1);
  assert.match(dirty.stderr, /uncommitted changes: drivers\/kmx-echo\/kmx_echo_main.c[\s\S]*commit them first/);
});

test('publish to S3-compatible storage: idempotent, and verify and diff read the bucket', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-publish-s3-');
  t.after(() => ws.remove());
  const { env, client, dir: data } = await startS3(t, 'kmx-artifacts');

  await preparePipeline(ws);
  expectOk(await ws.nx(['run-many', '-t', 'build-driver']), 'nx run-many -t build-driver');
  const first = expectOk(
    await ws.kmatrix(['publish', '--store', 's3://kmx-artifacts/drivers'], env),
    'kmatrix publish s3',
  );
  assert.match(first.stdout, /4 published, 0 unchanged; index: s3:\/\/kmx-artifacts\/drivers\/index.json/);
  const again = expectOk(
    await ws.kmatrix(['publish', '--store', 's3://kmx-artifacts/drivers'], env),
    'kmatrix publish s3 (again)',
  );
  assert.match(again.stdout, /^0 published, 4 unchanged/m);

  const index = JSON.parse(
    Buffer.from(
      await (
        await client.send(new GetObjectCommand({ Bucket: 'kmx-artifacts', Key: 'drivers/index.json' }))
      ).Body!.transformToByteArray(),
    ).toString(),
  );
  const entry = Object.values(index.targets)[0] as { modules: { key: string }[]; target: { kernelrelease: string } };
  const downloaded = join(data, 'kmx_echo.ko');
  await writeFile(
    downloaded,
    Buffer.from(
      await (
        await client.send(new GetObjectCommand({ Bucket: 'kmx-artifacts', Key: `drivers/${entry.modules[0]!.key}` }))
      ).Body!.transformToByteArray(),
    ),
  );
  const verify = await ws.kmatrix(['verify', downloaded, '--store', 's3://kmx-artifacts/drivers'], env);
  assert.equal(verify.exitCode, 0, verify.all);
  assert.match(verify.stdout, /✓ provenance subject "kmx_echo.ko"/);
  const diff = await ws.kmatrix(['diff', '--published', 's3://kmx-artifacts/drivers'], env);
  assert.equal(diff.exitCode, 0, diff.all);
  assert.match(diff.stdout, /no differences from s3:\/\/kmx-artifacts\/drivers/);
});
