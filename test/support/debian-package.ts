/** Real packages from Debian's archive for tests: what a user would download, checked like apt checks it. */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { detectMirrors } from '../../tools/kmatrix/distros/deb/archive/mirrors.ts';
import { parseStanzas } from '../../tools/kmatrix/distros/deb/archive/deb822.ts';
import { fetchBytes } from '../../tools/kmatrix/core/fetch.ts';

/** A package of bookworm's binary-all index, fetched and checked against the index's SHA256. */
export async function debianPackage(name: string, dest: string): Promise<string> {
  const { archive } = await detectMirrors();
  const index = (
    await execa('xz', ['-dc'], {
      input: await fetchBytes(`${archive}/dists/bookworm/main/binary-all/Packages.xz`, { stage: 'crawl' }),
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    })
  ).stdout;
  const stanza = parseStanzas(index, (first) => first === `Package: ${name}`).find((s) => s.Package === name);
  if (!stanza?.Filename) throw new Error(`${name} is not in bookworm`);
  const bytes = await fetchBytes(`${archive}/${stanza.Filename}`, { stage: 'crawl' });
  if (createHash('sha256').update(bytes).digest('hex') !== stanza.SHA256)
    throw new Error(`${name}: not the SHA256 the index lists`);
  const file = join(dest, `${name}.deb`);
  await writeFile(file, bytes);
  return file;
}
