/** The Debian index parser on a recorded excerpt of the real bookworm-security amd64 Packages index. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseDepends, parseStanzas } from '../../tools/kmatrix/distros/deb/archive/deb822.ts';
import { kernelsFromIndex } from '../../tools/kmatrix/distros/deb/archive/crawl.ts';
import { pickMirrors } from '../../tools/kmatrix/distros/deb/archive/mirrors.ts';
import { compareVersions } from '../../tools/kmatrix/model/version.ts';
import { KmatrixError } from '../../tools/kmatrix/core/errors.ts';

const excerpt = readFileSync(new URL('../fixtures/bookworm-security-amd64-Packages.excerpt', import.meta.url), 'utf8');
const indexed = parseStanzas(excerpt).map((stanza) => ({ stanza, baseUrl: 'http://mirror.invalid/debian-security' }));

test('crawl finds each ABI × flavour with its flavour, -common and linux-kbuild packages', () => {
  const kernels = kernelsFromIndex(indexed, 'debian-bookworm', 'x86_64');
  assert.deepEqual(
    kernels.map((k) => k.kernelrelease),
    ['6.1.0-57-amd64', '6.1.0-57-cloud-amd64', '6.1.0-57-rt-amd64', '6.12.117+deb12-amd64'],
  );
  const rt = kernels.find((k) => k.kernelrelease === '6.1.0-57-rt-amd64')!;
  assert.deepEqual(
    rt.kmatrix!.packages.map((p) => p.name),
    ['linux-headers-6.1.0-57-rt-amd64', 'linux-headers-6.1.0-57-common-rt', 'linux-kbuild-6.1'],
  );
  const k612 = kernels.find((k) => k.kernelrelease.startsWith('6.12'))!;
  assert.equal(k612.kmatrix!.abi, '6.12.117+deb12');
  assert.equal(k612.kmatrix!.flavour, 'amd64');
  // Digests and sizes come straight from the index.
  const stanza = indexed.find((p) => p.stanza.Package === 'linux-kbuild-6.12.117+deb12')!.stanza;
  const kbuild = k612.kmatrix!.packages.find((p) => p.role === 'kbuild')!;
  assert.equal(kbuild.sha256, stanza.SHA256);
  assert.equal(kbuild.size, Number(stanza.Size));
  assert.equal(kbuild.url, `http://mirror.invalid/debian-security/${stanza.Filename}`);
  // The crawler's shape: headers are the package URLs.
  assert.deepEqual(k612.headers, k612.kmatrix!.packages.map((p) => p.url).sort());
});

test('a flavour whose -common package is not in the index yet is left out, not guessed', () => {
  const kernels = kernelsFromIndex(indexed, 'debian-bookworm', 'x86_64');
  assert.ok(!kernels.some((k) => k.kernelrelease === '6.1.0-56-amd64'));
  assert.ok(!kernels.some((k) => k.kernelrelease.includes('6.12-amd64')), 'the meta package is not a kernel');
});

test('Depends fields keep their version constraints', () => {
  assert.deepEqual(
    parseDepends('linux-headers-6.1.0-57-common (= 6.1.192-3), linux-kbuild-6.1 (>= 6.1.192-3), gcc-12:amd64'),
    [
      { name: 'linux-headers-6.1.0-57-common', op: '=', version: '6.1.192-3' },
      { name: 'linux-kbuild-6.1', op: '>=', version: '6.1.192-3' },
      { name: 'gcc-12', op: undefined, version: undefined },
    ],
  );
});

test('kernel ABIs and Debian versions sort like dpkg sorts them', () => {
  const sorted = ['6.12.57+deb12', '6.1.0-47', '6.1.0-9', '6.12.117+deb12', '6.1.0-57'].sort(compareVersions);
  assert.deepEqual(sorted, ['6.1.0-9', '6.1.0-47', '6.1.0-57', '6.12.57+deb12', '6.12.117+deb12']);
  assert.ok(compareVersions('6.12.117-1~deb12u1', '6.12.117-1') < 0, '~ sorts before the end');
  assert.equal(compareVersions('6.1.170-3', '6.1.170-3'), 0);
});

test('the mirror comes from apt sources; env overrides it; none is a clear error', () => {
  const sources = [
    { uri: 'http://deb.example.org/debian', suites: ['bookworm', 'bookworm-updates'] },
    { uri: 'http://deb.example.org/debian-security/', suites: ['bookworm-security'] },
  ];
  assert.deepEqual(pickMirrors(sources, {}), {
    archive: 'http://deb.example.org/debian',
    security: 'http://deb.example.org/debian-security',
  });
  assert.equal(pickMirrors(sources, { KMATRIX_DEBIAN_MIRROR: 'http://other/debian' }).archive, 'http://other/debian');
  assert.throws(
    () => pickMirrors([], {}),
    (e: unknown) => e instanceof KmatrixError && /KMATRIX_DEBIAN_MIRROR/.test(e.remedy ?? ''),
  );
});
