/**
 * The crawl trusts an index only through the archive's key: a local Debian mirror on 127.0.0.1,
 * made by the real tools (apt-ftparchive writes its Release, gpg signs InRelease with a test key,
 * the Packages are a recorded excerpt of Debian's security archive), crawled with that key as the
 * keyring. A tampered Packages, a tampered InRelease, another key, unsigned text around the
 * signed part, a Release past its Valid-Until, a forged by-hash copy: each is refused with nothing
 * written. A mirror mid-sync with by-hash copies is read through them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startServer, type TestServer } from '../support/http.ts';
import { createWorkspace, repoRoot, type Workspace } from '../support/workspace.ts';
import { archiveKey } from '../support/keys.ts';
import { signSuite } from '../support/apt-release.ts';

const POLICY = {
  drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } },
  distros: { 'debian-bookworm': { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' } },
  matrix: [
    { driver: 'kmx-echo', distro: 'debian-bookworm', archs: ['x86_64'], flavours: ['amd64'], kernels: ['6.1.0-*'] },
  ],
};
const SUITES = ['bookworm', 'bookworm-updates', 'bookworm-security'];

/** dists/<suite>/main/binary-amd64/Packages.xz and a signed InRelease for each suite, as a Debian mirror lays them out. */
async function mirror(
  root: string,
  home: string,
  options: { validSeconds?: number; byHash?: boolean } = {},
): Promise<void> {
  const excerpt = await readFile(join(repoRoot, 'test/fixtures/bookworm-security-amd64-Packages.excerpt'));
  for (const suite of SUITES) {
    const dists = join(root, 'dists', suite);
    const binary = join(dists, 'main/binary-amd64');
    await mkdir(binary, { recursive: true });
    await writeFile(join(binary, 'Packages'), suite.endsWith('-security') ? excerpt : '');
    await execa('xz', ['-k', join(binary, 'Packages')]);
    await signSuite(dists, { suite, codename: 'bookworm', ...options }, home);
  }
}

/** Serves `root` as files: /debian/… and /debian-security/… both map to it. */
async function serve(root: string): Promise<TestServer> {
  return startServer((req, res) => {
    const path = (req.url ?? '').replace(/^\/debian(-security)?\//, '');
    readFile(join(root, path)).then(
      (body) => res.writeHead(200, { 'content-length': body.length }).end(body),
      () => res.writeHead(404).end(),
    );
  });
}

async function crawl(ws: Workspace, server: TestServer, keyring: string) {
  return ws.kmatrix(['crawl', 'deb'], {
    KMATRIX_DEBIAN_MIRROR: `${server.url}/debian`,
    KMATRIX_DEBIAN_SECURITY_MIRROR: `${server.url}/debian-security`,
    KMATRIX_DEBIAN_KEYRING: keyring,
  });
}

test('the crawl reads only indexes whose Release the archive key signed', { timeout: 5 * 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-trust-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ws = await createWorkspace('kmatrix-trust-ws-');
  t.after(() => ws.remove());
  await ws.write('support-matrix.json', JSON.stringify(POLICY, null, 2));
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  const archive = await archiveKey(dir, 'archive');
  const stranger = await archiveKey(dir, 'stranger');
  const root = join(dir, 'mirror');
  await mirror(root, archive.home);
  const server = await serve(root);
  t.after(() => server.close());
  const nothingWritten = async () => assert.deepEqual(await readdir(join(ws.dir, 'kernels')).catch(() => []), []);

  // Another key: refused, nothing written.
  const foreign = await crawl(ws, server, stranger.keyring);
  assert.equal(foreign.exitCode, 1, foreign.all);
  assert.match(foreign.all, /InRelease has no valid signature by a key in .*stranger\.gpg/);
  await nothingWritten();

  // A Packages file that is not the one the signed Release lists: refused.
  const security = join(root, 'dists/bookworm-security');
  const packages = join(security, 'main/binary-amd64/Packages.xz');
  const good = await readFile(packages);
  await writeFile(packages, Buffer.concat([good, Buffer.from('tampered')]));
  const tampered = await crawl(ws, server, archive.keyring);
  assert.equal(tampered.exitCode, 1, tampered.all);
  assert.match(tampered.all, /Packages\.xz is \d+ bytes with SHA256 [0-9a-f]{64}, but the signed .*InRelease says/);
  await nothingWritten();

  // Its checksum edited inside the signed text: the signature no longer holds.
  const inRelease = join(security, 'InRelease');
  const signed = await readFile(inRelease, 'utf8');
  const forged = signed.replace(/^ [0-9a-f]{64}(\s+\d+ main\/binary-amd64\/Packages\.xz)$/m, ` ${'0'.repeat(64)}$1`);
  assert.notEqual(forged, signed);
  await writeFile(inRelease, forged);
  const edited = await crawl(ws, server, archive.keyring);
  assert.equal(edited.exitCode, 1, edited.all);
  assert.match(edited.all, /bookworm-security\/InRelease has no valid signature/);
  await nothingWritten();

  // The forged list as unsigned text before the signed part: gpgv's output is all that is read.
  await writeFile(inRelease, `SHA256:\n ${'1'.repeat(64)} 9 main/binary-amd64/Packages.xz\n${signed}`);
  const around = await crawl(ws, server, archive.keyring);
  assert.equal(around.exitCode, 1, around.all);
  assert.match(around.all, /bookworm-security: InRelease signed by the archive key/);
  assert.match(around.all, /Packages\.xz is \d+ bytes with SHA256 [0-9a-f]{64}, but the signed/);
  await nothingWritten();

  // The real files back: the crawl succeeds, and says each Release was signed. The mirror serves
  // one package file of the pool; the availability check (a HEAD each) records the others, which
  // answer 404, in the list.
  await writeFile(inRelease, signed);
  await writeFile(packages, good);
  const pool = join(root, 'pool/updates/main/l/linux');
  await mkdir(pool, { recursive: true });
  await writeFile(join(pool, 'linux-headers-6.1.0-57-amd64_6.1.192-3_amd64.deb'), 'a package');
  const ok = await crawl(ws, server, archive.keyring);
  assert.equal(ok.exitCode, 0, ok.all);
  assert.match(ok.all, /bookworm-security: InRelease signed by the archive key/);
  assert.match(ok.all, /\d+ of \d+ package URLs are listed in the index but not served by the mirror \(404\)/);
  const list = JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json'));
  const k57 = list.debian.find((e: { kernelrelease: string }) => e.kernelrelease === '6.1.0-57-amd64');
  assert.ok(k57);
  assert.ok(k57.kmatrix.unavailable.includes('linux-headers-6.1.0-57-common'), k57.kmatrix.unavailable);
  assert.ok(!k57.kmatrix.unavailable.includes('linux-headers-6.1.0-57-amd64'), 'the served one is not listed');

  // A mirror mid-sync: a newer Packages.xz beside the older InRelease. With by-hash (as Debian's
  // and Ubuntu's archives offer) the crawl reads the exact copy the signature names, and goes on.
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  const syncing = join(dir, 'syncing');
  await mirror(syncing, archive.home, { byHash: true });
  await writeFile(join(syncing, 'dists/bookworm-security/main/binary-amd64/Packages.xz'), Buffer.from('newer'));
  const syncingServer = await serve(syncing);
  t.after(() => syncingServer.close());
  const midSync = await crawl(ws, syncingServer, archive.keyring);
  assert.equal(midSync.exitCode, 0, midSync.all);
  assert.match(midSync.all, /bookworm-security\/main\/binary-amd64\/Packages\.xz \(by hash\)/);
  assert.ok(JSON.parse(await ws.read('kernels/debian-bookworm-x86_64.json')).debian.length > 0);

  // …a by-hash copy that is not what its name says is refused like any other, and so is the plain
  // file the crawl then tries (it is the newer one here): nothing written.
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  const byHashDir = join(syncing, 'dists/bookworm-security/main/binary-amd64/by-hash/SHA256');
  const byHashFiles = await readdir(byHashDir);
  for (const name of byHashFiles) await writeFile(join(byHashDir, name), Buffer.from('forged'));
  const forgedByHash = await crawl(ws, syncingServer, archive.keyring);
  assert.equal(forgedByHash.exitCode, 1, forgedByHash.all);
  assert.match(
    forgedByHash.all,
    /by-hash\/SHA256\/[0-9a-f]{64}: \S+ is 6 bytes with SHA256 [0-9a-f]{64}, but the signed/,
  );
  assert.match(forgedByHash.all, /Packages\.xz is 5 bytes with SHA256 [0-9a-f]{64}, but the signed .*InRelease says/);
  await nothingWritten();

  // A mirror that lists by-hash but lacks the copy (404): the plain file, checked the same way, is read.
  for (const name of byHashFiles) await rm(join(byHashDir, name));
  await writeFile(join(syncing, 'dists/bookworm-security/main/binary-amd64/Packages.xz'), good);
  const plainAfter404 = await crawl(ws, syncingServer, archive.keyring);
  assert.equal(plainAfter404.exitCode, 0, plainAfter404.all);
  assert.match(plainAfter404.all, /by-hash\/SHA256\/[0-9a-f]{64}: HTTP 404; reading \S+\/Packages\.xz/);

  // A copy past its Valid-Until (a mirror replaying an old, once-valid archive): refused.
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  const stale = join(dir, 'stale');
  await mirror(stale, archive.home, { validSeconds: 1 });
  await new Promise((r) => setTimeout(r, 2_000));
  const staleServer = await serve(stale);
  t.after(() => staleServer.close());
  const expired = await crawl(ws, staleServer, archive.keyring);
  assert.equal(expired.exitCode, 1, expired.all);
  assert.match(expired.all, /expired on .* \(Valid-Until\)/);
  await nothingWritten();
});
