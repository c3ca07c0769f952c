/** A suite's Release as apt-ftparchive writes it, clearsigned into InRelease with a test key. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface SuiteInfo {
  suite: string;
  codename: string;
  origin?: string;
  /** Valid-Until, this many seconds from now */
  validSeconds?: number;
  /** Acquire-By-Hash: yes, with each index kept under by-hash/<algorithm>/<digest> as the real archives do */
  byHash?: boolean;
}

/** Writes dists/<suite>/Release over the files already in `dists` and signs it as InRelease. */
export async function signSuite(dists: string, info: SuiteInfo, gnupgHome: string): Promise<void> {
  const option = (name: string, value: string | number) => ['-o', `APT::FTPArchive::Release::${name}=${value}`];
  const { stdout } = await execa('apt-ftparchive', [
    ...option('Suite', info.suite),
    ...option('Codename', info.codename),
    ...(info.origin ? option('Origin', info.origin) : []),
    ...(info.validSeconds ? option('ValidTime', info.validSeconds) : []),
    ...(info.byHash ? ['-o', 'APT::FTPArchive::DoByHash=true'] : []),
    'release',
    dists,
  ]);
  await writeFile(join(dists, 'Release'), `${stdout}\n`);
  await execa('gpg', [
    '--batch',
    '--homedir',
    gnupgHome,
    '--yes',
    '--clearsign',
    '--output',
    join(dists, 'InRelease'),
    join(dists, 'Release'),
  ]);
}
