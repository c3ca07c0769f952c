/** Reading kernel-crawler entries: the traps visible in the real published data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crawlerDistro, kernelList, type ListedKernel } from '../../tools/kmatrix/model/kernel-list.ts';
import { listedKernels } from '../../tools/kmatrix/gen/crawler-list.ts';
import {
  debianCandidates,
  debianKernel,
  debianRelease,
} from '../../tools/kmatrix/distros/deb/archive/crawler-entry.ts';
import { ubuntuKernel, ubuntuRelease } from '../../tools/kmatrix/distros/deb/archive/ubuntu-entry.ts';
import { ubuntuKernelsFromIndex } from '../../tools/kmatrix/distros/deb/archive/ubuntu.ts';
import { parseStanzas } from '../../tools/kmatrix/distros/deb/archive/deb822.ts';

const mirrors = { archive: 'http://mirror.test/debian', security: 'http://mirror.test/debian-security' };
// The Debian family reads crawler entries with this machine's mirrors: these, for the tests.
process.env.KMATRIX_DEBIAN_MIRROR = mirrors.archive;
process.env.KMATRIX_DEBIAN_SECURITY_MIRROR = mirrors.security;
/** The policy names each release debian-<codename>, as today's support-matrix.json does. */
const distroOf = (family: string, release: string) => `${family}-${release}`;
const fixture = (f: string) =>
  kernelList.parse(JSON.parse(readFileSync(new URL(`../fixtures/kernel-crawler/${f}`, import.meta.url), 'utf8')));

test('the 2022 format (display-name keys, integer kernelversion) and the current one both parse', () => {
  const old = fixture('x86_64-sample.json');
  assert.equal(old.Debian![0]!.kernelversion, 1);
  assert.equal(crawlerDistro('AmazonLinux2'), 'amazonlinux2');
  assert.equal(crawlerDistro('Oracle7'), 'ol');
  const current = fixture('current-aarch64.json');
  assert.equal(current.debian![0]!.kernelversion, '1');
  assert.equal(crawlerDistro('Slackware'), undefined);
});

test('a Debian entry named by package version yields the real uname -r from its header package', () => {
  const entry = fixture('current-aarch64.json').debian![0]!;
  const k = debianKernel(entry, mirrors, (codename) => `debian-${codename}`);
  assert.ok(!('why' in k));
  assert.equal(k.kernelrelease, '6.1.0-47-rt-arm64');
  assert.equal(k.listedAs, '6.1.170-3-rt-arm64');
  assert.equal(k.kmatrix.distro, 'debian-bookworm');
  assert.deepEqual(
    k.kmatrix.packages.map((p) => `${p.role} ${p.name} ${p.hostArch ?? ''}`),
    [
      'flavour linux-headers-6.1.0-47-rt-arm64 ',
      'common linux-headers-6.1.0-47-common-rt ',
      'kbuild linux-kbuild-6.1 x86_64', // derived: the amd64 build of the listed arm64 kbuild, to cross-compile
      'kbuild linux-kbuild-6.1 aarch64',
    ],
  );
  const kbuild = k.kmatrix.packages[2]!;
  assert.equal(kbuild.url, 'http://mirror.test/debian/pool/main/l/linux/linux-kbuild-6.1_6.1.94-1~bpo11+1_amd64.deb');
});

test('one entry listing every flavour of its ABI picks the one its kernelrelease names', () => {
  const entry = fixture('current-x86_64.json').debian![0]!;
  const k = debianKernel(entry, mirrors, (codename) => `debian-${codename}`);
  assert.ok(!('why' in k));
  assert.equal(k.kernelrelease, '6.1.0-47-amd64');
  assert.deepEqual(
    k.kmatrix.packages.map((p) => p.name),
    ['linux-headers-6.1.0-47-amd64', 'linux-headers-6.1.0-47-common', 'linux-kbuild-6.1'],
  );
  // The same .deb on the security archive and on mirrors.edge.kernel.org: one package, alternatives.
  const flavour = k.kmatrix.packages[0]!;
  assert.deepEqual(
    [flavour.url, ...(flavour.alternatives ?? [])],
    [
      'http://mirror.test/debian-security/pool/updates/main/l/linux/linux-headers-6.1.0-47-amd64_6.1.170-3_amd64.deb',
      'http://mirror.test/debian/pool/main/l/linux/linux-headers-6.1.0-47-amd64_6.1.170-3_amd64.deb',
      'http://mirrors.edge.kernel.org/debian/pool/main/l/linux/linux-headers-6.1.0-47-amd64_6.1.170-3_amd64.deb',
    ],
  );
});

test("URLs: ../ segments are resolved, placeholders mapped to this machine's mirror and never fetched", () => {
  assert.deepEqual(
    debianCandidates('http://DEBIAN-MIRROR/debian/pool/main/l/linux/x/../linux-kbuild-6.1_6.1.1-1_amd64.deb', mirrors),
    [
      'http://mirror.test/debian/pool/main/l/linux/linux-kbuild-6.1_6.1.1-1_amd64.deb',
      'http://mirror.test/debian-security/pool/updates/main/l/linux/linux-kbuild-6.1_6.1.1-1_amd64.deb',
    ],
  );
});

test('the Debian release comes from backport/security markers, else from the series', () => {
  assert.equal(debianRelease('6.12.57+deb13', '6.12.57-1'), '13');
  assert.equal(debianRelease('5.18.0-0.deb11.4', '5.18.16-1~bpo11+1'), '11');
  assert.equal(debianRelease('4.19.0-0.bpo.19', '4.19.232-1~deb9u1'), '9');
  assert.equal(debianRelease('6.1.0-47', '6.1.170-3'), '12');
  assert.equal(debianRelease('5.19.0-2', '5.19.11-1'), undefined); // unstable only
});

test('distros no family reads are counted and reported, kernelconfigdata entries are reported as unbuildable', async () => {
  const r = await listedKernels(fixture('x86_64-sample.json'), distroOf);
  // Amazon Linux 1 (key "amazonlinux", end of life) is not an RPM distro kmatrix reads.
  assert.deepEqual([...r.unsupported.entries()].sort(), [
    ['amazonlinux', 5],
    ['flatcar', 5],
    ['photon', 5],
  ]);
  assert.ok(r.unusable.some((u) => u.what === 'Minikube 4.19.202' && /kernelconfigdata/.test(u.why)));
  // Debian's entries go to the debian family, Oracle's, CentOS's, Fedora's and Amazon's to rpm.
  const families = new Set(r.kernels.map((k) => k.kmatrix.distro.split('-')[0]));
  assert.deepEqual([...families].sort(), ['deb', 'rpm']);
});

test('one odd Debian entry (a malformed %-escape in a header URL) is reported, and the others still read', async () => {
  const good = {
    kernelversion: '1',
    kernelrelease: '6.1.0-47-amd64',
    target: 'debian',
    headers: [
      'linux-headers-6.1.0-47-amd64_6.1.170-3_amd64.deb',
      'linux-headers-6.1.0-47-common_6.1.170-3_all.deb',
      'linux-kbuild-6.1_6.1.170-3_amd64.deb',
    ].map((f) => `http://deb.example/debian/pool/main/l/linux/${f}`),
  };
  const odd = {
    ...good,
    kernelrelease: '6.1.0-48-amd64',
    headers: ['http://deb.example/debian/pool/main/l/linux/linux-headers-6.1.0-48-amd64_6.1.171-1_amd64%zz.deb'],
  };
  const listed = await listedKernels({ 'list.json#debian': [odd, good] } as never, distroOf);
  assert.deepEqual(
    listed.kernels.map((k) => k.kernelrelease),
    ['6.1.0-47-amd64'],
  );
  assert.deepEqual(listed.unusable, [
    { what: 'debian 6.1.0-48-amd64', distro: 'debian', why: 'cannot read its header URLs: URI malformed' },
  ]);
});

test("kernel-crawler's Ubuntu entries: generic, derivatives, their backports and per-arch shared trees read as kernels", async () => {
  const r = await listedKernels(fixture('x86_64-sample.json'), (family, release, os) => `${os ?? family}-${release}`);
  const ubuntu = r.kernels.filter((k) => k.kmatrix.distro.startsWith('ubuntu-'));
  assert.equal(ubuntu.length, 11);
  const of = (kr: string) => ubuntu.find((k) => k.kernelrelease === kr)!;
  // linux-aws-5.4 on bionic: the 2022 crawler named it 5.4.0-1032-aws-5.4; uname -r is 5.4.0-1032-aws.
  const backport = of('5.4.0-1032-aws');
  assert.equal(backport.listedAs, '5.4.0-1032-aws-5.4');
  assert.equal(backport.kmatrix.distro, 'ubuntu-bionic');
  assert.deepEqual(
    backport.kmatrix.packages.map((p) => `${p.role} ${p.name} ${p.version}`),
    [
      'flavour linux-headers-5.4.0-1032-aws 5.4.0-1032.33~18.04.1',
      'common linux-aws-5.4-headers-5.4.0-1032 5.4.0-1032.33~18.04.1',
    ],
  );
  // The same .deb on two mirrors: one package, one alternative.
  assert.equal(backport.kmatrix.packages[0]!.alternatives?.length, 1);
  assert.equal(of('5.15.0-1019-aws').kmatrix.distro, 'ubuntu-jammy');
  assert.equal(of('4.15.0-193-generic').kmatrix.distro, 'ubuntu-bionic');
  assert.equal(of('4.15.0-1150-azure').kmatrix.distro, 'ubuntu-xenial');
  assert.match(
    of('4.15.0-193-generic').kmatrix.image!.url,
    /\/pool\/main\/l\/linux\/linux-image-unsigned-4\.15\.0-193-generic_4\.15\.0-193\.204_amd64\.deb$/,
  );

  const arm = await listedKernels(
    fixture('aarch64-sample.json'),
    (family, release, os) => `${os ?? family}-${release}`,
  );
  const snapdragon = arm.kernels.find((k) => k.kernelrelease === '4.15.0-1137-snapdragon')!;
  assert.equal(snapdragon.kmatrix.arch, 'aarch64');
  assert.equal(snapdragon.kmatrix.packages[1]!.name, 'linux-snapdragon-headers-4.15.0-1137');

  const current = fixture('current-x86_64.json').ubuntu![0]!;
  const k = ubuntuKernel(current, (codename) => `ubuntu-${codename}`);
  assert.ok(!('why' in k));
  assert.equal(k.kernelrelease, '5.4.0-136-generic');
  assert.equal(k.kmatrix.distro, 'ubuntu-focal');
  assert.equal(ubuntuRelease('6.8.0-31', 'linux-hwe-6.8'), 'jammy');
  assert.equal(ubuntuRelease('6.8.0-31', 'linux'), 'noble');
  // A backport's version says which release it was built for: bionic's 5.4 HWE sits in plain linux-hwe.
  assert.equal(ubuntuRelease('5.4.0-150', 'linux-hwe', '5.4.0-150.167~18.04.1'), 'bionic');
  assert.equal(ubuntuRelease('6.8.0-40', 'linux-hwe-6.8', '6.8.0-40.40~22.04.3'), 'jammy');
  assert.equal(ubuntuRelease('5.15.0-91', 'linux', '5.15.0-91.101'), 'jammy');
});

test("an Ubuntu index: flavour packages name their shared tree without a version (as Ubuntu's do), backports' trees included", () => {
  const stanza = (fields: Record<string, string>) =>
    Object.entries(fields)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n');
  const pkg = (name: string, version: string, arch: string, depends?: string) =>
    stanza({
      Package: name,
      Architecture: arch,
      Version: version,
      ...(depends ? { Depends: depends } : {}),
      Filename: `pool/main/l/linux/${name}_${version}_${arch}.deb`,
      Size: '1000',
      SHA256: 'c'.repeat(64),
    });
  const text = [
    pkg('linux-headers-5.15.0-164-generic', '5.15.0-164.174', 'amd64', 'linux-headers-5.15.0-164, libc6 (>= 2.34)'),
    pkg('linux-headers-5.15.0-164', '5.15.0-164.174', 'all'),
    pkg('linux-image-unsigned-5.15.0-164-generic', '5.15.0-164.174', 'amd64'),
    pkg('linux-headers-6.8.0-90-generic', '6.8.0-90.91~22.04.1', 'amd64', 'linux-hwe-6.8-headers-6.8.0-90'),
    pkg('linux-hwe-6.8-headers-6.8.0-90', '6.8.0-90.91~22.04.1', 'all'),
    pkg('linux-headers-generic', '5.15.0.164.160', 'amd64', 'linux-headers-5.15.0-164-generic'),
  ].join('\n\n');
  const kept = parseStanzas(text, (first) => /^Package: linux-(?:[a-z0-9.-]+-)?(?:headers|kbuild|image)-/.test(first));
  assert.equal(kept.length, 6, 'the index filter keeps backports’ shared trees');
  const kernels = ubuntuKernelsFromIndex(
    kept.map((s) => ({ stanza: s, baseUrl: 'http://u.example/ubuntu' })),
    'ubuntu-jammy',
    'x86_64',
  );
  assert.deepEqual(
    kernels.map(
      (k) => `${k.kernelrelease} ${k.kmatrix!.packages.map((p) => p.name).join(' ')} ${k.kmatrix!.image?.name ?? '-'}`,
    ),
    [
      '5.15.0-164-generic linux-headers-5.15.0-164-generic linux-headers-5.15.0-164 linux-image-unsigned-5.15.0-164-generic',
      '6.8.0-90-generic linux-headers-6.8.0-90-generic linux-hwe-6.8-headers-6.8.0-90 -',
    ],
  );
  // kernelversion is uname -v's build number, as kernel-crawler writes it: a backport's keeps its ~22.04.1.
  assert.deepEqual(
    kernels.map((k) => k.kernelversion),
    ['174', '91~22.04.1'],
  );
});

test('`crawl deb --distro ubuntu` crawls the policy’s Ubuntu distros only; a distro the policy lacks is a usage error', async (t) => {
  const { crawlJobs } = await import('../../tools/kmatrix/gen/crawl.ts');
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-crawl-jobs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'support-matrix.json');
  const distro = (d: Record<string, string>) => ({ family: 'deb', toolchain: 'debian-bookworm', ...d });
  await writeFile(
    file,
    JSON.stringify({
      drivers: { d: { path: 'drivers/d', modules: ['d'] } },
      distros: {
        'debian-bookworm': distro({ release: 'bookworm' }),
        'ubuntu-jammy': distro({ distro: 'ubuntu', release: 'jammy' }),
        'ubuntu-noble': distro({ distro: 'ubuntu', release: 'noble' }),
      },
      matrix: [
        { driver: 'd', distro: 'ubuntu-jammy', archs: ['x86_64', 'aarch64'], flavours: ['generic'], kernels: ['*'] },
      ],
    }),
  );
  const jobs = await crawlJobs(file, { family: 'deb', os: 'ubuntu' });
  assert.deepEqual(
    jobs.map((j) => `${j.distro} ${j.os} ${j.release} ${j.arch}`),
    [
      'ubuntu-jammy ubuntu jammy x86_64',
      'ubuntu-jammy ubuntu jammy aarch64',
      'ubuntu-noble ubuntu noble x86_64',
      'ubuntu-noble ubuntu noble aarch64',
    ],
  );
  await assert.rejects(crawlJobs(file, { os: 'fedora' }), /the policy has no fedora distro to crawl/);
});

test('kernel-crawler entries are pinned by the crawled index of their own distro only (AlmaLinux and Rocky share file names)', async (t) => {
  const { crawledIndex, pinFromIndex } = await import('../../tools/kmatrix/gen/index-digests.ts');
  const root = await mkdtemp(join(tmpdir(), 'kmatrix-index-digests-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const file = 'kernel-devel-5.14.0-427.13.1.el9_4.x86_64.rpm';
  const crawled = (distro: string, digit: string, roles = ['devel']) => ({
    kernelversion: '1',
    kernelrelease: '5.14.0-427.13.1.el9_4.x86_64',
    target: distro.split('-')[0],
    kmatrix: {
      distro,
      arch: 'x86_64',
      abi: '5.14.0-427.13.1.el9_4',
      flavour: 'default',
      packageVersion: '5.14.0-427.13.1.el9_4',
      packages: roles.map((role) => ({
        role,
        name: 'kernel-devel',
        version: '5.14.0-427.13.1.el9_4',
        url: `https://${distro}.example/os/Packages/${file}`,
        sha256: digit.repeat(64),
        size: 100,
      })),
    },
  });
  await mkdir(join(root, 'kernels'));
  await writeFile(
    join(root, 'kernels/almalinux-9-x86_64.json'),
    JSON.stringify({ almalinux: [crawled('almalinux-9', 'a')] }),
  );
  await writeFile(join(root, 'kernels/rocky-9-x86_64.json'), JSON.stringify({ rocky: [crawled('rocky-9', 'b')] }));
  // A hand-edited list whose roles no family has is not a source, and breaks nothing.
  await writeFile(join(root, 'kernels/odd.json'), JSON.stringify({ odd: [crawled('odd-1', 'c', ['sideways'])] }));
  const index = await crawledIndex(root);
  const listed = (distro: string) => ({
    kernelrelease: '5.14.0-427.13.1.el9_4.x86_64',
    kmatrix: {
      ...crawled(distro, 'a').kmatrix,
      packages: [
        {
          role: 'devel',
          name: 'kernel-devel',
          version: '5.14.0-427.13.1.el9_4',
          url: `https://mirror.example/${file}`,
        },
      ],
    },
  });
  const kernels = [listed('rocky-9'), listed('almalinux-9'), listed('centos-9')] as unknown as ListedKernel[];
  assert.equal(pinFromIndex(kernels, index), 2);
  assert.equal(kernels[0]!.kmatrix.packages[0]!.sha256, 'b'.repeat(64), "Rocky's own digest");
  assert.equal(kernels[1]!.kmatrix.packages[0]!.sha256, 'a'.repeat(64), "AlmaLinux's own digest");
  assert.equal(kernels[2]!.kmatrix.packages[0]!.sha256, undefined, 'no index of CentOS: left to the download');
  assert.deepEqual((kernels[0]!.kmatrix.packages[0] as { alternatives?: string[] }).alternatives, [
    `https://rocky-9.example/os/Packages/${file}`,
  ]);
});

test('repeated entries cost only themselves and print as one reason, whichever entry they repeat', async () => {
  const { renderSkipped } = await import('../../tools/kmatrix/gen/skipped.ts');
  const entry = (kernelrelease: string) => ({
    kernelversion: '1',
    kernelrelease,
    target: 'minikube',
    kernelconfigdata: 'eA==',
  });
  const r = await listedKernels(
    { Minikube: [entry('4.19.1'), entry('5.10.1'), entry('4.19.1'), entry('5.10.1'), entry('5.10.1')] },
    (family, release) => `${family}-${release}`,
  );
  const dups = r.unusable.filter((u) => u.why.startsWith('a duplicate of'));
  assert.deepEqual(
    dups.map((u) => u.why.slice(0, 'a duplicate of Minikube[0]'.length)),
    ['a duplicate of Minikube[0]', 'a duplicate of Minikube[1]', 'a duplicate of Minikube[1]'],
  );
  const lines = renderSkipped(
    dups.map((u) => ({ ...u })),
    new Map(),
    false,
  );
  assert.match(
    lines[0]!,
    /^skipped 3 entries \(Minikube 4\.19\.1, Minikube 5\.10\.1 ×2\): a duplicate of an earlier entry/,
  );
});
