/**
 * Progress of long transfers as a log shows it (CI, Nx task output, a pipe): a line at every 10%
 * with size, rate and time left, or every 16 MiB when the size is unknown — never a line per chunk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byteProgress, interactive } from '../../tools/kmatrix/core/progress.ts';

test('a 57 MB download in a log: nine lines, one per 10%, each with the rate and the time left', () => {
  const lines: string[] = [];
  const p = byteProgress('linux-image-6.1.0-57-amd64 6.1.158-1', 57_000_000, (l) => lines.push(l), false);
  for (let sent = 0; sent < 57_000_000; sent += 65_536) p.advance(Math.min(65_536, 57_000_000 - sent));
  p.done();
  assert.equal(lines.length, 9, lines.join('\n'));
  assert.match(
    lines[0]!,
    /^ {2}linux-image-6\.1\.0-57-amd64 6\.1\.158-1: 10% \(5\.7 of 57\.0 MB, [\d.…]+( MB\/s)?, \d+ s left\)$/,
  );
  assert.match(lines[8]!, /: 90% \(51\.3 of 57\.0 MB/);
});

test('an unknown size: a line every 16 MiB', () => {
  const lines: string[] = [];
  const p = byteProgress('push 0123456789ab', undefined, (l) => lines.push(l), false);
  for (let i = 0; i < 50; i++) p.advance(1024 * 1024);
  assert.deepEqual(
    lines.map((l) => l.split(' (')[0]),
    ['  push 0123456789ab: 16.8 MB', '  push 0123456789ab: 33.6 MB', '  push 0123456789ab: 50.3 MB'],
  );
});

test('CI is never a live terminal', () => {
  assert.equal(interactive({ CI: 'true' }), false);
});
