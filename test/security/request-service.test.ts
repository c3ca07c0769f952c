/**
 * The request service on a network: callers need its token; a distro the policy does not name
 * costs nothing; many requests for kernels nobody has seen cost one crawl, and a bounded number of
 * builds with the rest told to come back later (429); a failed crawl is not retried on every
 * request; answers never carry the mirror's URL; a malformed escape is a 400. The real
 * `kmatrix serve-requests` process, with a mirror on 127.0.0.1 that answers slowly and badly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createWorkspace } from '../support/workspace.ts';
import { startRequestService } from '../support/request-service.ts';

const TOKEN = 'request-token-abcdef0123456789';

test('serve-requests under hostile callers: tokens, policy distros, one crawl, a bounded queue, no leaks', {
  timeout: 5 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-sec-request-');
  t.after(() => ws.remove());
  // A mirror that takes 3 s to say 404 to anything: every crawl fails, slowly.
  let mirrorHits = 0;
  const mirror = createServer((_req, res) => {
    mirrorHits++;
    setTimeout(() => res.writeHead(404).end('no'), 3_000);
  });
  await new Promise<void>((ok) => mirror.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => mirror.close(() => ok())));
  const mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;

  const refused = await ws.kmatrix(['serve-requests', '--port', '0']);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.all, /no request token configured/);

  const service = await startRequestService(ws, ['--port', '0', '--max-builds', '2', '--max-queue', '1'], {
    KMATRIX_REQUEST_TOKEN: TOKEN,
    KMATRIX_DEBIAN_MIRROR: `${mirrorUrl}/debian`,
    KMATRIX_DEBIAN_SECURITY_MIRROR: `${mirrorUrl}/debian-security`,
  });
  t.after(() => service.stop());
  const base = service.base;
  const get = async (path: string, token: string | null = TOKEN) => {
    const r = await fetch(`${base}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: r.status, retryAfter: r.headers.get('retry-after'), text: await r.text() };
  };
  const kernel = (n: number) => `/v1/modules/debian-bookworm/6.1.0-${900 + n}-amd64/x86_64`;

  // Without the token, or with another, nothing; /healthz stays open.
  assert.equal((await get(kernel(1), null)).status, 401);
  assert.equal((await get(kernel(1), 'guess')).status, 401);
  assert.equal((await get('/healthz', null)).status, 200);

  // A distro the policy does not name: 404 at once, nothing crawled.
  const foreign = await get('/v1/modules/debian-zzzz/6.1.0-901-amd64/x86_64');
  assert.equal(foreign.status, 404);
  assert.match(foreign.text, /debian-zzzz is not a distro of the support matrix/);
  assert.equal(mirrorHits, 0);

  // Malformed escapes are the caller's fault.
  assert.equal((await get('/v1/modules/debian-bookworm/%E0%A4%A/x86_64')).status, 400);
  assert.equal((await get('/v1/artifacts/%zz')).status, 400);

  // Nine kernels nobody has seen, at once: two build slots and one queue place, the rest 429 with
  // Retry-After. The two running share a single crawl, which fails (502) without naming the
  // mirror; the queued one then finds that crawl failed moments ago (503), and does not crawl.
  const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => get(kernel(i + 1))));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [429, 429, 429, 429, 429, 429, 502, 502, 503], JSON.stringify(answers));
  for (const a of answers.filter((x) => x.status !== 502)) assert.ok(Number(a.retryAfter) > 0);
  for (const a of answers) assert.doesNotMatch(a.text, /127\.0\.0\.1|http:\/\//, a.text);
  assert.equal(service.log().match(/crawling debian bookworm x86_64$/gm)?.length, 1, service.log());
  assert.match(service.log(), /joining the crawl of debian-bookworm\/x86_64 in progress/);
  assert.match(service.log(), /crawling debian-bookworm\/x86_64 failed: .*127\.0\.0\.1/, 'the log has the detail');

  // Asked again right after: no new crawl, a 503 that says when to retry.
  const hitsBefore = mirrorHits;
  const again = await get(kernel(1));
  assert.equal(again.status, 503);
  assert.ok(Number(again.retryAfter) > 0);
  assert.equal(mirrorHits, hitsBefore);
  assert.equal((await get('/healthz', null)).status, 200, 'the service is still up');
});
