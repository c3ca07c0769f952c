/**
 * An rpm's cpio payload is unpacked by our own reader, as root on CI runners. Hostile archives
 * must not write outside the destination: not by `..` or an absolute name, not through a symlink
 * the archive itself made first, not by overwriting through one, and no setuid bit survives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CpioError, extractCpio } from '../../tools/kmatrix/packages/cpio.ts';
import { cpio, DIR, FILE, LINK, unpackScratch } from '../support/archives.ts';

const scratch = (t: Parameters<typeof unpackScratch>[0]) => unpackScratch(t, 'kmatrix-sec-unpack-');

const refused = (e: unknown) => e instanceof CpioError;

test('a member behind a symlink the archive made is refused, and nothing lands outside', async (t) => {
  const { dest, outside } = await scratch(t);
  const archive = cpio([
    { name: './usr', mode: LINK, data: outside },
    { name: './usr/pwned', mode: FILE, data: 'owned' },
  ]);
  await assert.rejects(extractCpio(archive, dest), refused);
  assert.deepEqual(await readdir(outside), []);
});

test('a relative symlink out of the tree is refused the same way, deeper down too', async (t) => {
  const { dest, outside } = await scratch(t);
  const archive = cpio([
    { name: './usr', mode: DIR },
    { name: './usr/src', mode: LINK, data: '../../outside' },
    { name: './usr/src/kernels/Makefile', mode: FILE, data: 'x' },
  ]);
  await assert.rejects(extractCpio(archive, dest), refused);
  assert.deepEqual(await readdir(outside), []);
});

test('a file written over a symlink of the archive is refused', async (t) => {
  const { dest, outside } = await scratch(t);
  const archive = cpio([
    { name: './config', mode: LINK, data: join(outside, 'victim') },
    { name: './config', mode: FILE, data: 'overwrite' },
  ]);
  await assert.rejects(extractCpio(archive, dest), refused);
  assert.deepEqual(await readdir(outside), []);
});

test('".." names are refused; an absolute name is rooted at the destination, as rpm payloads are', async (t) => {
  const { dest, outside } = await scratch(t);
  for (const name of ['../outside/x', './a/../../outside/x']) {
    await assert.rejects(extractCpio(cpio([{ name, mode: FILE, data: 'x' }]), dest), refused, name);
  }
  await extractCpio(cpio([{ name: '/etc/x', mode: FILE, data: 'x' }]), dest);
  assert.equal((await stat(join(dest, 'etc/x'))).isFile(), true);
  assert.deepEqual(await readdir(outside), []);
});

test('a setuid, setgid, sticky member is written without those bits; a device node is skipped', async (t) => {
  const { dest } = await scratch(t);
  const archive = cpio([
    { name: './bin', mode: DIR },
    { name: './bin/tool', mode: 0o106755, data: '#!/bin/sh\n' },
    { name: './bin/null', mode: 0o020666 },
  ]);
  await extractCpio(archive, dest);
  assert.equal((await stat(join(dest, 'bin/tool'))).mode & 0o7777, 0o755);
  await assert.rejects(lstat(join(dest, 'bin/null')), { code: 'ENOENT' });
});

test('symlinks that stay links inside a real header tree still unpack', async (t) => {
  const { dest } = await scratch(t);
  const archive = cpio([
    { name: './usr/src/kernels/6.1/arch', mode: DIR },
    { name: './usr/src/kernels/6.1/source', mode: LINK, data: '.' },
    { name: './usr/src/kernels/6.1/arch/Kconfig', mode: FILE, data: 'x' },
  ]);
  assert.equal(await extractCpio(archive, dest), 1);
  assert.equal((await lstat(join(dest, 'usr/src/kernels/6.1/source'))).isSymbolicLink(), true);
});
