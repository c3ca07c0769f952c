/** RESULTS.md after a run of some figures: their lines replaced and stamped, every other line kept as recorded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { previousLines, renderResults } from '../bench/results-file.ts';

test('a bench run of some figures rewrites only their lines, each stamped with date and commit', () => {
  const before = [
    '# Benchmark results',
    '',
    '- [build] build overhead: ratio 1.06 (2026-11-29, aaaaaaa)',
    '- [scale] gen, 1000 targets: ratio 2.09 (2026-11-29, aaaaaaa)',
    '- an untagged line from before lines were tagged',
    '- [boot] boot tests: ratio 1.20 (2026-11-29, aaaaaaa)',
  ].join('\n');
  const after = renderResults({
    header: ['# Benchmark results'],
    order: ['build', 'scale', 'crawler', 'boot'],
    ran: new Set(['scale', 'crawler']),
    previous: previousLines(before),
    current: [
      { figure: 'scale', text: 'gen, 1000 targets: ratio 1.10' },
      { figure: 'crawler', text: 'gen on a kernel-crawler list: ratio 1.30' },
    ],
    stamp: '2026-12-02, bbbbbbb',
  });
  assert.equal(
    after,
    [
      '# Benchmark results',
      '',
      '- [build] build overhead: ratio 1.06 (2026-11-29, aaaaaaa)',
      '- [scale] gen, 1000 targets: ratio 1.10 (2026-12-02, bbbbbbb)',
      '- [crawler] gen on a kernel-crawler list: ratio 1.30 (2026-12-02, bbbbbbb)',
      '- [boot] boot tests: ratio 1.20 (2026-11-29, aaaaaaa)',
      '',
    ].join('\n'),
  );
});
