/**
 * The cross-process lock: a holder that died however it died (no heartbeat for a minute) is taken
 * over; a caller for which the lock is an optimisation stops waiting and goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLock } from '../../tools/kmatrix/core/file-lock.ts';

test('a lock nobody has touched for a minute is taken over; a live one is waited for, up to the bound', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-lock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lock = join(dir, 'locks', 'package-x');

  // Left by a holder SIGKILLed two minutes ago (no owner file even: it died before writing it).
  await mkdir(lock, { recursive: true });
  const old = new Date(Date.now() - 120_000);
  await utimes(lock, old, old);
  let waited = 0;
  const result = await withLock(
    lock,
    () => waited++,
    async () => {
      assert.match(await readFile(join(lock, 'owner'), 'utf8'), /pid \d+ since /);
      return 'ran';
    },
  );
  assert.equal(result, 'ran');
  assert.ok(!existsSync(lock), 'released');

  // Held by someone alive (touched just now): waited for, then given up on at the bound.
  await mkdir(lock, { recursive: true });
  let gaveUp = false;
  const started = Date.now();
  const bounded = await withLock(
    lock,
    () => waited++,
    async () => 'ran anyway',
    {
      maxWaitMs: 1_000,
      onGiveUp: () => {
        gaveUp = true;
      },
    },
  );
  assert.equal(bounded, 'ran anyway');
  assert.ok(gaveUp && waited >= 1);
  assert.ok(Date.now() - started >= 1_000);
  assert.ok(existsSync(lock), "the live holder's lock is left alone");
});
