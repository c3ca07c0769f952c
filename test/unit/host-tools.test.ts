/** arm64 host programs on an x86_64 runner: what gen records, and what a build checks first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { foreignHostToolsEnv } from '../../tools/kmatrix/model/host-tools.ts';
import { checkForeignHostTools } from '../../tools/kmatrix/compile/foreign-host-tools.ts';
import { KmatrixError } from '../../tools/kmatrix/core/errors.ts';

test('an arm64 kernel whose headers carry arm64 host programs builds on x86_64 under qemu-user, not the other way round', () => {
  assert.deepEqual(foreignHostToolsEnv('x86_64', 'x86_64'), {});
  assert.deepEqual(foreignHostToolsEnv('x86_64', 'aarch64'), { QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu' });
  assert.equal(foreignHostToolsEnv('aarch64', 'x86_64'), undefined);
});

test('a build that needs qemu-aarch64 stops with the remedy unless binfmt_misc has it enabled with the F flag', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-binfmt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu' };
  const entry = join(dir, 'qemu-aarch64');
  const refused = (file: string) =>
    assert.throws(
      () => checkForeignHostTools(env, file),
      (e: unknown) => e instanceof KmatrixError && /qemu-user-static and binfmt-support/.test(e.remedy ?? ''),
    );
  refused(join(dir, 'missing'));
  await writeFile(entry, 'disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n');
  refused(entry);
  // Without F the interpreter would have to exist inside the build container: not enough.
  await writeFile(entry, 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\n');
  refused(entry);
  await writeFile(entry, 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n');
  checkForeignHostTools(env, entry);
  // A native build needs nothing.
  checkForeignHostTools({}, join(dir, 'missing'));
});
