/**
 * A .deb is unpacked by dpkg-deb (the container and compression) and our tar reader and writer,
 * as root on CI runners. Hostile archives must not reach outside the destination — not by "..",
 * not through a symlink the archive made, not by a symlink or hard link that climbs out — and must
 * not leave device nodes or setuid bits. Then a fuzz run: hundreds of damaged and mutated archives,
 * each either unpacked inside the destination or refused with a DebError/CpioError, never anything else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DebError, extractDeb, extractTar } from '../../tools/kmatrix/packages/deb.ts';
import { CpioError, extractCpio } from '../../tools/kmatrix/packages/cpio.ts';
import { cpio, DIR, deb, FILE, LINK, type Member, tar, unpackScratch } from '../support/archives.ts';

const scratch = (t: Parameters<typeof unpackScratch>[0]) => unpackScratch(t, 'kmatrix-sec-deb-');

/** Unpacks a .deb made of `members` through dpkg-deb, as the header store does. */
async function unpackDeb(root: string, dest: string, members: Member[]): Promise<void> {
  const file = join(root, `p-${Math.random().toString(16).slice(2)}.deb`);
  await writeFile(file, deb(tar(members)));
  await extractDeb(file, dest);
}

const refused = (e: unknown) => e instanceof DebError;

test('a .deb member behind a symlink the archive made, or with "..", is refused; nothing lands outside', async (t) => {
  const { root, dest, outside } = await scratch(t);
  const cases: Member[][] = [
    [
      { name: './usr', mode: LINK, data: outside },
      { name: './usr/pwned', mode: FILE, data: 'owned' },
    ],
    [{ name: '../outside/x', mode: FILE, data: 'x' }],
    [{ name: './a/../../outside/x', mode: FILE, data: 'x' }],
    [
      { name: './lib', mode: LINK, data: '../../outside' },
      { name: './lib/x', mode: FILE, data: 'x' },
    ],
    [
      { name: './config', mode: LINK, data: join(outside, 'victim') },
      { name: './config', mode: FILE, data: 'overwrite' },
    ],
    [{ name: './shadow', mode: FILE, tarType: '1', data: '/etc/hostname' }],
    [{ name: './up', mode: FILE, tarType: '1', data: '../../etc/hostname' }],
    // Each link alone stays inside; followed as a chain, the second climbs out.
    [
      { name: './deep/link', mode: LINK, data: '..' },
      { name: './deep2/x', mode: LINK, data: '../deep/link/..' },
    ],
    [
      { name: './dir/', mode: DIR },
      { name: './dir', mode: FILE, data: 'over a folder' },
    ],
  ];
  for (const members of cases) {
    await assert.rejects(unpackDeb(root, dest, members), refused, members.map((m) => m.name).join(', '));
    assert.deepEqual(await readdir(outside), []);
  }
});

test('a .deb with a device node, a FIFO and a setuid file: no device, no FIFO, no setuid bit', async (t) => {
  const { root, dest } = await scratch(t);
  await unpackDeb(root, dest, [
    { name: './bin/', mode: DIR },
    { name: './bin/tool', mode: 0o106755, data: '#!/bin/sh\n' },
    { name: './bin/null', mode: 0o020666, tarType: '3' },
    { name: './bin/pipe', mode: 0o010644, tarType: '6' },
  ]);
  assert.equal((await stat(join(dest, 'bin/tool'))).mode & 0o7777, 0o755);
  await assert.rejects(lstat(join(dest, 'bin/null')), { code: 'ENOENT' });
  await assert.rejects(lstat(join(dest, 'bin/pipe')), { code: 'ENOENT' });
});

test("a header package's own links stay as they are: absolute targets, relative ones inside, hard links", async (t) => {
  const { root, dest } = await scratch(t);
  await unpackDeb(root, dest, [
    { name: './usr/src/linux-headers-6.1.0-1-common/Makefile', mode: FILE, data: 'all:\n' },
    { name: './usr/lib/linux-kbuild-6.1/tools/', mode: DIR },
    { name: './usr/src/linux-headers-6.1.0-1-common/tools', mode: LINK, data: '../../lib/linux-kbuild-6.1/tools' },
    { name: './lib/modules/6.1.0-1-amd64/build', mode: LINK, data: '/usr/src/linux-headers-6.1.0-1-amd64' },
    {
      name: './usr/src/same-makefile',
      mode: FILE,
      tarType: '1',
      data: './usr/src/linux-headers-6.1.0-1-common/Makefile',
    },
  ]);
  assert.equal(await readlink(join(dest, 'lib/modules/6.1.0-1-amd64/build')), '/usr/src/linux-headers-6.1.0-1-amd64');
  assert.equal(
    await readlink(join(dest, 'usr/src/linux-headers-6.1.0-1-common/tools')),
    '../../lib/linux-kbuild-6.1/tools',
  );
  assert.equal((await stat(join(dest, 'usr/src/same-makefile'))).nlink, 2);
});

/** A deterministic generator, so a failing case can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function mutate(bytes: Buffer, next: () => number): Buffer {
  const out = Buffer.from(bytes);
  const kind = Math.floor(next() * 3);
  if (kind === 0) return out.subarray(0, Math.floor(next() * out.length)); // truncated
  const flips = 1 + Math.floor(next() * 8);
  for (let i = 0; i < flips; i++) {
    const at = Math.floor(next() * out.length);
    // Either any byte, or one that makes a name or a link climb: "/" and "." are what attacks use.
    out[at] = kind === 1 ? Math.floor(next() * 256) : '/.'.charCodeAt(Math.floor(next() * 2));
  }
  return out;
}

/** Everything under `dir`, with each entry's type: to see nothing landed beside the destination. */
async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

test('fuzz: 400 mutated tar and cpio archives either unpack inside the destination or are refused', async (t) => {
  const { root, dest, outside } = await scratch(t);
  const members: Member[] = [
    { name: './usr/', mode: DIR },
    { name: './usr/src/', mode: DIR },
    { name: './usr/src/Makefile', mode: FILE, data: 'obj-m := x.o\n' },
    { name: './usr/src/link', mode: LINK, data: 'Makefile' },
    { name: './usr/src/abs', mode: LINK, data: '/usr/src/Makefile' },
    { name: './usr/src/hard', mode: FILE, tarType: '1', data: './usr/src/Makefile' },
    { name: './usr/include/x.h', mode: FILE, data: '#define X 1\n' },
  ];
  const sources = { tar: tar(members), cpio: cpio(members.filter((m) => !m.tarType)) };
  const before = await listing(root);
  const next = random(20261202);
  let unpacked = 0;
  for (let i = 0; i < 400; i++) {
    const format = i % 2 === 0 ? 'tar' : 'cpio';
    const bytes = mutate(sources[format], next);
    const into = join(dest, String(i));
    await mkdir(into);
    try {
      if (format === 'tar') await extractTar(Readable.from([bytes]), into);
      else await extractCpio(bytes, into);
      unpacked++;
    } catch (error) {
      assert.ok(
        error instanceof DebError || error instanceof CpioError,
        `case ${i} (${format}) failed with ${(error as Error).name}: ${(error as Error).message}`,
      );
    }
    assert.deepEqual(await readdir(outside), [], `case ${i} wrote outside`);
  }
  // Nothing appeared beside the destination, and some mutations still unpacked (the fuzz reached the writer).
  assert.deepEqual(
    (await listing(root)).filter((p) => !p.startsWith('dest')),
    before.filter((p) => !p.startsWith('dest')),
  );
  assert.ok(unpacked > 20, `${unpacked} of 400 unpacked`);
});
