/**
 * What the cache server remembers of the bodies it hashed: a verified copy is served only while
 * the stored file keeps the identity it was hashed under, and memory stays within its budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Verified } from '../../tools/kmatrix/cache/verified.ts';

const KiB = 1024;
const limits = { reverifyMs: 60_000, memoryBytes: 300 * KiB, memoryObjectBytes: 128 * KiB };

test('a verified body is served from memory only while its file keeps the identity it was hashed under', () => {
  const v = new Verified(limits);
  const body = Buffer.alloc(100 * KiB, 1);
  v.record('main/1', 'dev:ino:size:mtime-1', body);
  assert.equal(v.isCurrent('main/1', 'dev:ino:size:mtime-1'), true);
  assert.equal(v.body('main/1', 'dev:ino:size:mtime-1'), body);
  // Written behind the server's back: new mtime. The copy is dropped, the file must be hashed again.
  assert.equal(v.body('main/1', 'dev:ino:size:mtime-2'), undefined);
  assert.equal(v.holds('main/1'), false);
  assert.equal(v.isCurrent('main/1', undefined), false, 'a store without identities is hashed on every read');
});

test('a verified body is hashed again once reverifyMs has passed', (t) => {
  t.mock.timers.enable({ apis: ['Date'] });
  const v = new Verified(limits);
  v.record('main/1', 'id', Buffer.alloc(KiB));
  t.mock.timers.tick(59_999);
  assert.equal(v.isCurrent('main/1', 'id'), true);
  t.mock.timers.tick(2);
  assert.equal(v.isCurrent('main/1', 'id'), false);
  assert.equal(v.body('main/1', 'id'), undefined);
});

test('memory holds at most its budget, dropping the least recently served copy first', () => {
  const v = new Verified(limits);
  for (const k of ['a', 'b', 'c']) v.record(`main/${k}`, k, Buffer.alloc(100 * KiB));
  assert.ok(v.body('main/a', 'a'), 'a is served: now the most recently used');
  v.record('main/d', 'd', Buffer.alloc(100 * KiB));
  assert.equal(v.holds('main/b'), false, 'b, the least recently served, made room');
  assert.deepEqual(
    ['a', 'c', 'd'].map((k) => v.holds(`main/${k}`)),
    [true, true, true],
  );
  assert.equal(v.isCurrent('main/b', 'b'), true, 'b is still known to be whole, just no longer held');
  v.record('main/big', 'big', Buffer.alloc(129 * KiB));
  assert.equal(v.holds('main/big'), false, 'a body over the per-object limit is never held');
});

test('bodies being read to be kept have a budget of their own', () => {
  const v = new Verified(limits);
  assert.equal(v.claim(128 * KiB), true);
  assert.equal(v.claim(128 * KiB), true);
  assert.equal(v.claim(128 * KiB), false, 'a third would pass 300 KiB: it is streamed, not held');
  assert.equal(v.claim(129 * KiB), false, 'over the per-object limit');
  v.unclaim(128 * KiB);
  assert.equal(v.claim(128 * KiB), true);
});

test('a forgotten object (evicted, quarantined) leaves nothing behind', () => {
  const v = new Verified(limits);
  v.record('main/1', 'id', Buffer.alloc(KiB));
  v.forget('main/1');
  assert.equal(v.isCurrent('main/1', 'id'), false);
  assert.equal(v.holds('main/1'), false);
  v.record('main/2', 'id2', Buffer.alloc(300 * KiB - KiB)); // over the per-object limit: not held
  for (let i = 0; i < 3; i++) v.record(`main/x${i}`, 'x', Buffer.alloc(100 * KiB));
  assert.equal(v.holds('main/x0'), true, 'the forgotten copy freed its bytes: three fit');
});
