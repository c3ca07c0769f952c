/**
 * Which Debian mirror to use: the one this machine's apt already uses (never a hard-coded host),
 * overridable with KMATRIX_DEBIAN_MIRROR / KMATRIX_DEBIAN_SECURITY_MIRROR.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseStanzas } from './deb822.ts';
import { KmatrixError } from '../../../core/errors.ts';

export interface Mirrors {
  /** e.g. http://deb.debian.org/debian */
  archive: string;
  /** e.g. http://deb.debian.org/debian-security */
  security: string;
}

interface Source {
  uri: string;
  suites: string[];
}

function fromOneLineList(text: string): Source[] {
  const out: Source[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = line.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/);
    if (m) out.push({ uri: m[1]!, suites: [m[2]!] });
  }
  return out;
}

function fromDeb822(text: string): Source[] {
  return parseStanzas(text)
    .filter((s) => (s.Types ?? '').split(/\s+/).includes('deb') && s.URIs && s.Suites)
    .flatMap((s) => s.URIs!.split(/\s+/).map((uri) => ({ uri, suites: s.Suites!.split(/\s+/) })));
}

export async function readAptSources(root = '/etc/apt'): Promise<Source[]> {
  const files: string[] = [join(root, 'sources.list')];
  try {
    for (const f of await readdir(join(root, 'sources.list.d'))) files.push(join(root, 'sources.list.d', f));
  } catch {
    // no sources.list.d: only sources.list
  }
  const sources: Source[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    if (f.endsWith('.sources')) sources.push(...fromDeb822(text));
    else if (f.endsWith('.list')) sources.push(...fromOneLineList(text));
  }
  return sources;
}

const strip = (uri: string) => uri.replace(/\/+$/, '');

export function pickMirrors(sources: Source[], env: NodeJS.ProcessEnv = process.env): Mirrors {
  const isDebian = (s: Source) => /\/debian$/.test(strip(s.uri));
  const isSecurity = (s: Source) => /\/debian-security$/.test(strip(s.uri));
  const archive = env.KMATRIX_DEBIAN_MIRROR ?? sources.find(isDebian)?.uri;
  if (!archive) {
    throw new KmatrixError('no Debian mirror found in /etc/apt/sources.list{,.d}', {
      stage: 'crawl',
      remedy:
        'set KMATRIX_DEBIAN_MIRROR to a Debian mirror URL ending in /debian (and KMATRIX_DEBIAN_SECURITY_MIRROR for debian-security)',
    });
  }
  const security = env.KMATRIX_DEBIAN_SECURITY_MIRROR ?? sources.find(isSecurity)?.uri ?? `${strip(archive)}-security`;
  return { archive: strip(archive), security: strip(security) };
}

export async function detectMirrors(): Promise<Mirrors> {
  return pickMirrors(await readAptSources());
}
