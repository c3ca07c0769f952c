/**
 * Reading RPM repositories: the repomd.xml → primary index chain of a repository made by the real
 * createrepo_c (with real rpmbuild packages), kernel-crawler's RPM entries as published, and the
 * damaged or hostile metadata a mirror can send.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { kernelList } from '../../tools/kmatrix/model/kernel-list.ts';
import { listedKernels } from '../../tools/kmatrix/gen/crawler-list.ts';
import { kernelsOf } from '../../tools/kmatrix/distros/rpm/archive/crawl.ts';
import { rpmKernel } from '../../tools/kmatrix/distros/rpm/archive/crawler-entry.ts';
import { kernelPackages } from '../../tools/kmatrix/distros/rpm/archive/primary.ts';
import { parseRepomd, readPrimary, readRepomd } from '../../tools/kmatrix/distros/rpm/archive/repomd.ts';
import { serveDirectory, startServer } from '../support/http.ts';

const fixture = (f: string) =>
  kernelList.parse(JSON.parse(readFileSync(new URL(`../fixtures/kernel-crawler/${f}`, import.meta.url), 'utf8')));
const distroOf = (release: string, os: string) => `${os}-${release}`;
const quiet = () => {};

/** A one-file rpm, as rpmbuild makes it. */
async function rpm(top: string, name: string, version: string, release: string, arch: string): Promise<void> {
  const spec = join(top, `${name}.spec`);
  await writeFile(
    spec,
    `Name: ${name}\nVersion: ${version}\nRelease: ${release}\nSummary: t\nLicense: MIT\nBuildArch: ${arch}\n%define __os_install_post %{nil}\n%define debug_package %{nil}\n%description\nt\n%install\nmkdir -p %{buildroot}/usr/share/${name}\necho ${name} > %{buildroot}/usr/share/${name}/f\n%files\n/usr/share/${name}\n`,
  );
  await execa('rpmbuild', [
    '-bb',
    '--quiet',
    '--define',
    `_topdir ${top}`,
    '--define',
    `_rpmdir ${join(top, 'repo/Packages')}`,
    spec,
  ]);
}

test('a createrepo_c repository lists each kernel-devel with its SHA256, and the package holding its kernel', {
  timeout: 120_000,
}, async (t) => {
  const top = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-repo-'));
  t.after(() => rm(top, { recursive: true, force: true }));
  for (const [name, v, r] of [
    ['kernel-devel', '6.1.102', '108.177.amzn2023'],
    ['kernel', '6.1.102', '108.177.amzn2023'],
    ['kernel-devel', '6.1.100', '102.172.amzn2023'], // an older build, kept
    ['kernel6.12-devel', '6.12.40', '63.114.amzn2023'],
    ['kernel6.12', '6.12.40', '63.114.amzn2023'],
    ['kernel-headers', '6.1.102', '108.177.amzn2023'], // userspace headers: not a kernel's
    ['bash', '5.2.15', '1.amzn2023'],
  ] as const)
    await rpm(top, name, v, r, 'x86_64');
  await execa('createrepo_c', ['--quiet', '--no-database', '--general-compress-type=xz', join(top, 'repo')]);
  const server = await serveDirectory(join(top, 'repo'));
  t.after(() => server.close());

  // Plain HTTP with no keyring to check repomd.xml.asc: refused, nothing is trusted.
  await assert.rejects(readRepomd(server.url, undefined, 'AMAZONLINUX', quiet), /plain HTTP and no keyring/);
  const repomd = parseRepomd(
    `${server.url}/repodata/repomd.xml`,
    await readFile(join(top, 'repo/repodata/repomd.xml'), 'utf8'),
  );
  assert.match(repomd.primary.url, /-primary\.xml\.xz$/);
  const packages = kernelPackages(await readPrimary(repomd, quiet), server.url);
  assert.deepEqual(packages.map((p) => p.name).sort(), [
    'kernel',
    'kernel-devel',
    'kernel-devel',
    'kernel6.12',
    'kernel6.12-devel',
  ]);

  const kernels = kernelsOf(packages, 'x86_64', 'amazonlinux-2023', 'amazonlinux2023');
  assert.deepEqual(
    kernels.map((k) => k.kernelrelease),
    ['6.1.100-102.172.amzn2023.x86_64', '6.1.102-108.177.amzn2023.x86_64', '6.12.40-63.114.amzn2023.x86_64'],
  );
  const k = kernels[1]!.kmatrix!;
  const sha = (
    await execa('sha256sum', [join(top, 'repo/Packages/x86_64/kernel-devel-6.1.102-108.177.amzn2023.x86_64.rpm')])
  ).stdout.split(' ')[0];
  assert.deepEqual(k.packages, [
    {
      role: 'devel',
      name: 'kernel-devel',
      version: '6.1.102-108.177.amzn2023',
      url: `${server.url}/Packages/x86_64/kernel-devel-6.1.102-108.177.amzn2023.x86_64.rpm`,
      sha256: sha,
      size: (await readFile(join(top, 'repo/Packages/x86_64/kernel-devel-6.1.102-108.177.amzn2023.x86_64.rpm'))).length,
    },
  ]);
  assert.equal(k.image?.name, 'kernel');
  assert.equal(kernels[0]!.kmatrix!.image, undefined); // no kernel package of that build
  assert.equal(kernels[2]!.kmatrix!.packages[0]!.name, 'kernel6.12-devel');
  assert.equal(kernels[2]!.kmatrix!.image?.name, 'kernel6.12');
});

test('a primary index that is not what repomd.xml says, or repomd.xml pinning it weakly, is refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-bad-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'repodata'));
  await writeFile(join(dir, 'repodata/p-primary.xml.gz'), 'not what was pinned');
  const server = await serveDirectory(dir);
  t.after(() => server.close());
  const repomd = (type: string, sum: string) =>
    `<?xml version="1.0"?><repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary"><checksum type="${type}">${sum}</checksum><location href="repodata/p-primary.xml.gz"/><size>19</size></data></repomd>`;
  const url = `${server.url}/repodata/repomd.xml`;
  await assert.rejects(
    readPrimary(parseRepomd(url, repomd('sha256', 'a'.repeat(64))), quiet),
    /mid-sync or tampered|but repomd\.xml says/,
  );
  assert.throws(() => parseRepomd(url, repomd('sha1', 'a'.repeat(40))), /pins its primary index with sha1/);
  assert.throws(() => parseRepomd(url, repomd('sha256', 'zz')), /malformed sha256/);
  assert.throws(() => parseRepomd(url, '<repomd><data type="other"/></repomd>'), /names no primary index/);
  assert.throws(() => parseRepomd(url, '<<<'), /repomd\.xml is not XML/);
});

test('a keyring asks for a signature: a repository without repomd.xml.asc is refused, and says what to do', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-rpm-unsigned-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'repodata'));
  await writeFile(join(dir, 'repodata/repomd.xml'), '<repomd/>');
  const server = await serveDirectory(dir);
  t.after(() => server.close());
  await assert.rejects(
    readRepomd(server.url, join(dir, 'keyring.gpg'), 'FEDORA', quiet),
    (error: Error & { remedy?: string }) => {
      assert.match(
        error.message,
        /repomd\.xml has no signature \(.*repomd\.xml\.asc is missing\) while KMATRIX_FEDORA_KEYRING asks for one/,
      );
      assert.match(error.remedy ?? '', /serves repomd\.xml\.asc/);
      return true;
    },
  );
});

test('a plain-HTTP mirror.list with no keyring is refused before anything is read through it', async (t) => {
  const { crawlRpm } = await import('../../tools/kmatrix/distros/rpm/archive/crawl.ts');
  const { RPM_DISTROS } = await import('../../tools/kmatrix/distros/rpm/archive/repositories.ts');
  let requests = 0;
  const server = await startServer((_req, res) => {
    requests++;
    res.end('https://attacker.example/repo/\n');
  });
  t.after(() => server.close());
  const saved = { ...process.env };
  t.after(() => {
    process.env = saved;
  });
  process.env.KMATRIX_AMAZONLINUX_MIRROR = server.url;
  delete process.env.KMATRIX_AMAZONLINUX_KEYRING;
  const amazon = RPM_DISTROS.find((d) => d.id === 'amazonlinux')!;
  await assert.rejects(
    crawlRpm(amazon, '2023', 'x86_64', 'amazonlinux-2023', quiet),
    (error: Error & { remedy?: string }) => {
      assert.match(error.message, /mirror\.list would be trusted on nothing: it is plain HTTP/);
      assert.match(error.remedy ?? '', /KMATRIX_AMAZONLINUX_KEYRING/);
      return true;
    },
  );
  assert.equal(requests, 0);
});

test('a hostile primary index: odd entries cost only themselves, and locations cannot leave http(s)', () => {
  const pkg = (name: string, href: string, extra = '') =>
    `<package type="rpm"><name>${name}</name><arch>x86_64</arch><version epoch="0" ver="6.1.1" rel="1.fc41"/><checksum type="sha256" pkgid="YES">${'b'.repeat(64)}</checksum><size package="10"/><location href="${href}"${extra}/></package>`;
  const odd = (ver: string, rel: string) =>
    `<package type="rpm"><name>kernel-devel</name><arch>x86_64</arch><version epoch="0" ver="${ver}" rel="${rel}"/><location href="c.rpm"/></package>`;
  const xml = `<metadata>${pkg('kernel-devel', 'Packages/a.rpm')}${odd('6.1.1/../..', '1')}${odd('6.1.1', '1 fc41')}${pkg('kernel-devel', 'file:///etc/passwd')}<package type="rpm"><name>kernel-core</name><version ver="1"/></package>${pkg('kernel-core', 'b.rpm', ' xml:base="https://elsewhere.example/repo/"')}</metadata>`;
  const found = kernelPackages(xml, 'http://mirror.example/repo');
  assert.deepEqual(
    found.map((p) => p.url),
    ['http://mirror.example/repo/Packages/a.rpm', 'https://elsewhere.example/repo/b.rpm'],
  );
});

test("kernel-crawler's RPM entries (Fedora, CentOS, Oracle, Amazon Linux 2 with ../ segments, 2023) read as kernels", async () => {
  const r = await listedKernels(fixture('x86_64-sample.json'), (family, release, os) => `${os ?? family}-${release}`);
  const of = (distro: string) => r.kernels.filter((k) => k.kmatrix.distro.startsWith(`${distro}-`));
  assert.equal(of('fedora').length, 5);
  assert.equal(of('centos').length, 5);
  assert.equal(of('ol').length, 15);
  assert.equal(of('amazonlinux').length, 10); // 2 and 2022 (Amazon Linux 1 is not read)
  const al2 = of('amazonlinux').find((k) => k.kmatrix.distro === 'amazonlinux-2')!;
  assert.ok(!al2.kmatrix.packages[0]!.url.includes('/../'), 'the ../ segments are resolved');
  assert.equal(al2.kmatrix.packages[0]!.role, 'devel');
  const fedora = of('fedora')[0]!;
  assert.equal(fedora.kmatrix.image?.name, 'kernel-core');
  assert.match(fedora.kmatrix.image!.url, /\/Packages\/k\/kernel-core-5\.11\.12-300\.fc34\.x86_64\.rpm$/);
  assert.ok(!r.unsupported.has('ol') && !r.unsupported.has('fedora'));
  assert.ok(r.unsupported.has('photon') && r.unsupported.has('flatcar'));

  const al2023 = fixture('current-x86_64.json').amazonlinux2023![0]!;
  const k = rpmKernel(al2023, 'amazonlinux2023', distroOf);
  assert.ok(!('why' in k));
  assert.equal(k.kernelrelease, '6.1.102-108.177.amzn2023.x86_64');
  assert.equal(k.kmatrix.distro, 'amazonlinux-2023');
  assert.equal(k.kmatrix.abi, '6.1.102-108.177.amzn2023');
  assert.equal(
    k.kmatrix.packages[0]!.url,
    'https://cdn.amazonlinux.com/al2023/blobstore/4349a9d7d53869650d3a27e8fb9f5d86476ca1ca4c5ccfaec1b5f1a2e3a1efe4/kernel-devel-6.1.102-108.177.amzn2023.x86_64.rpm',
  );
  const odd = rpmKernel(
    { ...al2023, headers: ['https://x.example/kernel-headers-6.1.1-1.fc41.x86_64.rpm'] },
    'fedora',
    distroOf,
  );
  assert.match((odd as { why: string }).why, /none of its header URLs is a kernel-devel/);
});

test('a mirror.list names the repository an Amazon Linux release is in today', async (t) => {
  const { followMirrorList } = await import('../../tools/kmatrix/distros/rpm/archive/crawl.ts');
  const server = await startServer((req, res) => {
    if (req.url === '/good') return res.end('# comment\n\nhttps://cdn.example/al2023/core/guids/abc/$basearch/\n');
    if (req.url === '/bad') return res.end('file:///etc/shadow\n');
    res.writeHead(404).end();
  });
  t.after(() => server.close());
  assert.equal(
    await followMirrorList(`${server.url}/good`, 'aarch64', quiet),
    'https://cdn.example/al2023/core/guids/abc/aarch64',
  );
  await assert.rejects(followMirrorList(`${server.url}/bad`, 'x86_64', quiet), /names no repository/);
});
