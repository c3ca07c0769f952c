/**
 * Real kernel lists carry dead URLs: superseded security updates, retired suites, mirrors that
 * answer 400 instead of 404. gen turns each such kernel into "skipped: <package>: <reason>" and
 * goes on. Driven by a 127.0.0.1 mirror that answers 400, 404, 410, 500, a reset, a short body,
 * plus a listed URL whose host does not resolve and one behind a TLS certificate nobody trusts —
 * and that forwards the real Debian archive's header packages for one live kernel, which still
 * becomes a target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readdir, rm } from 'node:fs/promises';
import { genReportFile } from '../../tools/kmatrix/model/paths.ts';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { detectMirrors } from '../../tools/kmatrix/distros/deb/archive/mirrors.ts';
import { startServer } from '../support/http.ts';
import { createWorkspace, expectOk } from '../support/workspace.ts';

type Mode = 400 | 404 | 410 | 500 | 'reset' | 'short';

/** The dead kernels of the list: ABI number → how the mirror fails each of its packages. */
function modeOf(n: number): Mode {
  if (n < 950) return 400;
  if (n < 1000) return 404;
  if (n < 1050) return 410;
  if (n < 1052) return 'reset';
  if (n === 1052) return 500;
  if (n === 1053) return 'short';
  return 404;
}

const DEAD = Array.from({ length: 160 }, (_, i) => 900 + i);

function crawlerEntry(base: string, n: number, host = base) {
  const version = `6.1.999-${n}`;
  return {
    kernelversion: '1',
    kernelrelease: `6.1.0-${n}-amd64`,
    target: 'debian',
    headers: [
      `${host}/pool/main/l/linux/linux-headers-6.1.0-${n}-amd64_${version}_amd64.deb`,
      `${host}/pool/main/l/linux/linux-headers-6.1.0-${n}-common_${version}_all.deb`,
      `${host}/pool/main/l/linux/linux-kbuild-6.1_${version}_amd64.deb`,
    ],
  };
}

test('gen skips each kernel whose packages cannot be fetched, with the reason, and builds the rest', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-dead-urls-');
  t.after(() => ws.remove());
  await ws.write(
    'support-matrix.json',
    JSON.stringify({
      drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } },
      distros: { 'debian-bookworm': { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' } },
      matrix: [
        { driver: 'kmx-echo', distro: 'debian-bookworm', archs: ['x86_64'], flavours: ['amd64'], kernels: ['6.1.0-*'] },
      ],
    }),
  );
  expectOk(
    await ws.kmatrix(['crawl', 'deb', '--release', 'bookworm', '--arch', 'x86_64', '--out', 'crawled.json']),
    'crawl',
  );
  // No crawled index in kernels/: every package of the list is fetched, the path dead URLs take.
  await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
  const crawled = JSON.parse(await ws.read('crawled.json')).debian as {
    kernelrelease: string;
    headers: string[];
    kmatrix: { abi: string; flavour: string };
  }[];
  const live = crawled.filter((e) => e.kmatrix.flavour === 'amd64' && e.kmatrix.abi.startsWith('6.1.0-')).at(-1)!;
  const real = await detectMirrors();

  let inFlight = 0;
  let peak = 0;
  const mirror = await startServer(async (req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    res.on('close', () => inFlight--);
    const path = req.url!;
    const n = Number(path.match(/6\.1\.(?:0-|999-)(\d+)/)?.[1] ?? NaN);
    const upstream =
      path.match(/^\/debian-security(\/pool\/updates\/.*)$/)?.[1] ?? path.match(/^\/debian(\/pool\/.*)$/)?.[1];
    // The live kernel's header packages come from the real archive; its image is not offered.
    if (!Number.isFinite(n) || n < 900) {
      if (!upstream || !/\/linux-(headers|kbuild)-/.test(upstream)) return res.writeHead(404).end();
      const from = path.startsWith('/debian-security') ? `${real.security}${upstream}` : `${real.archive}${upstream}`;
      const answer = await fetch(from);
      res.writeHead(answer.status, { 'content-length': answer.headers.get('content-length') ?? undefined });
      if (!answer.body) return res.end();
      return void Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream).pipe(res);
    }
    const mode = modeOf(n);
    if (mode === 'reset') return req.socket.destroy();
    if (mode === 'short') {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(10));
      return setTimeout(() => req.socket.destroy(), 20);
    }
    res.writeHead(mode, { 'content-type': 'text/plain' }).end(`${mode}\n`);
  });
  t.after(() => mirror.close());

  // A server whose certificate nobody trusts, and a host that does not resolve.
  const dir = join(ws.dir, '.tls');
  await execa('mkdir', ['-p', dir]);
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ]);
  const { readFile } = await import('node:fs/promises');
  const tls = createHttpsServer(
    { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
    (_req, res) => res.writeHead(200).end('x'),
  );
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => tls.close(() => resolve())));
  const tlsUrl = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/debian-other`;

  const base = `${mirror.url}/debian`;
  const list = {
    debian: [
      { kernelversion: '1', kernelrelease: live.kernelrelease, target: 'debian', headers: live.headers },
      ...DEAD.map((n) => crawlerEntry(base, n)),
      // The same dead kernel listed twice (real lists repeat entries under other kernelversions).
      { ...crawlerEntry(base, 901), kernelversion: '2' },
      crawlerEntry(base, 1200, 'http://mirror.kmatrix-test.invalid/debian-other'),
      crawlerEntry(base, 1201, tlsUrl),
    ],
    minikube: ['1.26.0', '1.26.1', '1.27.0'].map((v) => ({
      kernelversion: v,
      kernelrelease: '5.10.57',
      target: 'minikube',
      kernelconfigdata: 'Q09ORklHX1g9eQo=',
    })),
  };
  await ws.write('list.json', JSON.stringify(list, null, 2));
  const env = { KMATRIX_DEBIAN_MIRROR: base, KMATRIX_DEBIAN_SECURITY_MIRROR: `${mirror.url}/debian-security` };

  const dry = await ws.kmatrix(['gen', '--kernels', 'list.json', '--dry-run'], env);
  expectOk(dry, 'gen --dry-run');
  assert.match(dry.all, /^1 targets: 1 would be added/m);
  assert.deepEqual(await readdir(join(ws.dir, 'targets')).catch(() => []), [], 'a dry run writes nothing');

  const gen = expectOk(await ws.kmatrix(['gen', '--kernels', 'list.json'], env), 'gen');
  assert.match(
    gen.all,
    new RegExp(`^\\+ kmx-echo--debian-bookworm--${live.kernelrelease.replace(/[.+]/g, '\\$&')}--x86_64$`, 'm'),
  );
  assert.match(gen.all, /^1 targets: 1 added/m);
  // Each reason once, with a count and the first entries; one line for the repeated Minikube kernel.
  const line = (reason: string) =>
    gen.all
      .split('\n')
      .filter((l) => l.startsWith('skipped') && l.endsWith(`: no mirror serves its header packages (${reason})`));
  assert.equal(line('HTTP 400').length, 1, gen.all);
  assert.match(
    line('HTTP 400')[0]!,
    /^skipped 50 entries \(kmx-echo--debian-bookworm--6\.1\.0-900-amd64--x86_64, .*, and 47 more\)/,
  );
  assert.match(line('HTTP 404')[0]!, /^skipped 56 entries /);
  assert.match(line('HTTP 410')[0]!, /^skipped 50 entries /);
  // Resets, and a body cut short of its Content-Length, read as the connection the server closed.
  assert.match(
    gen.all,
    /^skipped 3 entries \(.*6\.1\.0-1050-amd64.*6\.1\.0-1053-amd64.*\): no mirror serves its header packages \(connection closed by the server\)$/m,
  );
  assert.match(
    gen.all,
    /^skipped kmx-echo--debian-bookworm--6\.1\.0-1052-amd64--x86_64: no mirror serves linux-headers-6\.1\.0-1052-common 6\.1\.999-1052: HTTP 500 from \S+ \(4 attempts\); /m,
  );
  assert.match(
    gen.all,
    /^skipped kmx-echo--debian-bookworm--6\.1\.0-1200-amd64--x86_64: .*DNS: no such host from http:\/\/mirror\.kmatrix-test\.invalid\//m,
  );
  assert.match(
    gen.all,
    /^skipped kmx-echo--debian-bookworm--6\.1\.0-1201-amd64--x86_64: .*TLS: self-signed certificate from https:\/\/127\.0\.0\.1:/m,
  );
  assert.match(gen.all, /^skipped minikube 5\.10\.57 ×3: unbuildable yet: /m);
  assert.match(gen.all, /^skipped per distro: debian-bookworm 162, minikube 1 \(--verbose lists every entry\)$/m);
  assert.ok(peak <= 8, `at most 8 requests at once (saw ${peak})`);

  // A dry run that would remove that target writes nothing: not the marker, not the gen report.
  await ws.commitAll('generated');
  await ws.write('gone.json', JSON.stringify({ debian: [crawlerEntry(base, 920)] }));
  await ws.commitAll('a list without the live kernel');
  const report = await readFile(genReportFile(ws.dir)); // under dist/, which git does not see
  const wouldRemove = expectOk(await ws.kmatrix(['gen', '--kernels', 'gone.json', '--dry-run'], env), 'dry run');
  assert.match(wouldRemove.all, /\b1 would be removed\b/);
  assert.equal((await ws.git(['status', '--porcelain', '--untracked-files=all'])).stdout, '', 'no target file written');
  assert.deepEqual(await readFile(genReportFile(ws.dir)), report, 'the gen report is as the real gen left it');

  // --verbose: every entry on its own line, with its own packages.
  const verbose = expectOk(
    await ws.kmatrix(['gen', '--kernels', 'list.json', '--dry-run', '--verbose'], env),
    'gen --verbose',
  );
  const skippedLines = verbose.all.split('\n').filter((l) => /^skipped kmx-echo--/.test(l));
  assert.equal(skippedLines.length, DEAD.length + 2);
  assert.match(
    verbose.all,
    /^skipped kmx-echo--debian-bookworm--6\.1\.0-977-amd64--x86_64: no mirror serves linux-headers-6\.1\.0-977-common 6\.1\.999-977: HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/debian\/pool\/main\/l\/linux\/linux-headers-6\.1\.0-977-common_6\.1\.999-977_all\.deb; HTTP 404 from /m,
  );
  const target = JSON.parse(await ws.read(`targets/kmx-echo/debian-bookworm/${live.kernelrelease}/x86_64/target.json`));
  // Its image is not on our mirror but is at the URL the list gives: found there, and pinned.
  assert.match(target.kernel.image.sha256, /^[0-9a-f]{64}$/);
  assert.doesNotMatch(target.kernel.image.url, /127\.0\.0\.1/);

  // `latest: 1` over a list whose newest entries are dead: it falls back to the newest kernel a
  // mirror serves, as it does for a gap a crawl found; the dead ones are reported, once each.
  await ws.write(
    'newest-dead.json',
    JSON.stringify({ debian: [list.debian[0], ...[920, 960, 1010].map((n) => crawlerEntry(base, n))] }),
  );
  const policy = JSON.parse(await ws.read('support-matrix.json'));
  policy.matrix[0].latest = 1;
  await ws.write('support-matrix.json', JSON.stringify(policy));
  const latest = expectOk(
    await ws.kmatrix(['gen', '--kernels', 'newest-dead.json', '--dry-run', '--verbose'], env),
    'gen with latest',
  );
  assert.match(
    latest.all,
    /^1 targets: 0 would be added, 0 would be changed, 0 would be removed, 1 unchanged$/m,
    'the live kernel is still the target',
  );
  for (const n of [920, 960, 1010])
    assert.equal(
      latest.all
        .split('\n')
        .filter((l) => l.startsWith(`skipped kmx-echo--debian-bookworm--6.1.0-${n}-amd64--x86_64: no mirror serves`))
        .length,
      1,
      `${n}\n${latest.all}`,
    );
  assert.doesNotMatch(latest.all, /mirror gap/);
});
