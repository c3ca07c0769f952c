/**
 * A driver's Makefile is code from outside, and kbuild runs it. A hostile one builds in a sandbox:
 * not as root even when kmatrix runs as root, no capabilities, no privilege gain, a read-only root
 * filesystem, bounded processes and memory (settable), no network; and a flood of output costs
 * kmatrix's own process no memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createWorkspace, expectOk, prepareOneTarget } from '../support/workspace.ts';

/** Each probe prints `probe NAME=VALUE` while kbuild reads the Makefile; then 120 MB of output. */
const HOSTILE_MAKEFILE = `
$(info probe uid=$(shell id -u))
$(info probe capeff=$(shell awk '/^CapEff/ {print $$2}' /proc/self/status))
$(info probe nonewprivs=$(shell awk '/^NoNewPrivs/ {print $$2}' /proc/self/status))
$(info probe rootfs=$(shell touch /usr/kmatrix-pwned 2>/dev/null && echo writable || echo read-only))
$(info probe tmp=$(shell touch /tmp/scratch && echo writable))
$(info probe pids=$(shell cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null))
$(info probe memory=$(shell cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null))
$(info probe net=$(shell ls /sys/class/net | tr '\\n' ' '))
ifeq ($(KMATRIX_FLOODED),)
export KMATRIX_FLOODED := 1
$(shell head -c 100000000 /dev/zero | tr '\\0' x | fold -w 1000 >&2)
$(shell head -c 20000000 /dev/zero | tr '\\0' y >&2)
endif
obj-m := hostile.o
`;

const HOSTILE_C = `#include <linux/module.h>
MODULE_LICENSE("GPL");
static int __init hostile_init(void) { return 0; }
module_init(hostile_init);
`;

/** Loaded into the kmatrix process: its peak RSS, written when it exits. */
const RSS_REPORTER = `import { writeFileSync } from 'node:fs';
process.on('exit', () => writeFileSync(process.env.RSS_FILE, String(process.resourceUsage().maxRSS * 1024)));
`;

test('a hostile Makefile builds unprivileged, read-only and bounded, and its output flood costs no memory', {
  timeout: 15 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-sandbox-');
  t.after(() => ws.remove());
  await ws.write('drivers/hostile/Makefile', HOSTILE_MAKEFILE);
  await ws.write('drivers/hostile/hostile.c', HOSTILE_C);
  await ws.write('rss-reporter.mjs', RSS_REPORTER);
  const project = await prepareOneTarget(ws, { path: 'drivers/hostile', modules: ['hostile'] }, 'hostile');

  const rssFile = join(ws.dir, 'rss');
  const r = await ws.kmatrix(['build', project], {
    KMATRIX_BUILD_PIDS: '256',
    KMATRIX_BUILD_MEMORY: '1g',
    NODE_OPTIONS: `--import=${join(ws.dir, 'rss-reporter.mjs')}`,
    RSS_FILE: rssFile,
  });
  expectOk(r, 'kmatrix build of the hostile driver');
  const probe = (name: string) => r.all.match(new RegExp(`^probe ${name}=(.*)$`, 'm'))?.[1]?.trim();

  assert.match(probe('uid') ?? '', /^[1-9]\d*$/, 'the build must not run as root');
  if (process.getuid?.() === 0) assert.equal(probe('uid'), '65532');
  assert.equal(probe('capeff'), '0000000000000000');
  assert.equal(probe('nonewprivs'), '1');
  assert.equal(probe('rootfs'), 'read-only');
  assert.equal(probe('tmp'), 'writable');
  assert.equal(probe('pids'), '256');
  assert.equal(probe('memory'), String(1024 ** 3));
  assert.equal(probe('net'), 'lo');

  // The terminal got a bounded share and a note; the log file kept the whole flood.
  assert.match(r.all, /\[kmatrix: more output than \d+ bytes; the rest is only in the build log\]/);
  assert.ok(r.all.length < 16 * 1024 * 1024, `${r.all.length} bytes on the terminal`);
  const log = join(ws.dir, 'dist/targets', ...project.split('--'), 'build.log');
  assert.ok((await stat(log)).size > 120_000_000, 'the build log has every line');
  // 120 MB of output, held whole, would be several times that in V8 strings.
  const rss = Number(await readFile(rssFile, 'utf8'));
  assert.ok(rss < 300 * 1024 * 1024, `kmatrix peaked at ${Math.round(rss / 2 ** 20)} MiB`);
});
