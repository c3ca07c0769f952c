import { join } from 'node:path';
import { crawlDebian } from '../crawl/debian.ts';
import { detectMirrors } from '../crawl/mirror.ts';
import { stableJson, writeFileAtomic } from '../files/atomic.ts';
import { arch as archSchema, identifier } from '../matrix/names.ts';
import { KmatrixError } from '../errors.ts';
import { log, parse, type Command } from './command.ts';

const help = `Usage: npx kmatrix crawl debian [--release bookworm] [--arch x86_64] [--out FILE]

Reads the Debian archive's Packages indexes over HTTP (<release>, <release>-updates,
<release>-security; main) and writes the kernel list in kernel-crawler's JSON shape:
  { "debian": [ { kernelversion, kernelrelease, target, headers: [urls], kmatrix: {...} } ] }
where kmatrix.packages names each header package a build needs (flavour, -common,
linux-kbuild) with its SHA256 and size from the index. Nothing else is downloaded.

The mirror is the one in /etc/apt/sources.list.d/ (override: KMATRIX_DEBIAN_MIRROR,
KMATRIX_DEBIAN_SECURITY_MIRROR).

Options:
  --release NAME   Debian release (default: bookworm)
  --arch ARCH      x86_64 (default)
  --out FILE       where to write (default: kernels/debian-<release>-<arch>.json; "-" = stdout)
  -h, --help       show this help
`;

export const crawlCommand: Command = {
  name: 'crawl',
  summary: 'list the kernels a distro archive offers, with header package digests',
  help,
  async run(argv) {
    const { values, positionals } = parse('crawl', argv, {
      release: { type: 'string', default: 'bookworm' },
      arch: { type: 'string', default: 'x86_64' },
      out: { type: 'string' },
    }, true);
    if (positionals.length !== 1 || positionals[0] !== 'debian') {
      throw new KmatrixError(`crawl needs the source to crawl: \`debian\`${positionals.length ? ` (got: ${positionals.join(' ')})` : ''}`, {
        stage: 'usage',
        remedy: 'run `npx kmatrix crawl debian`; see `npx kmatrix crawl --help`',
      });
    }
    const release = identifier.safeParse(values.release);
    const arch = archSchema.safeParse(values.arch);
    if (!release.success || !arch.success) {
      throw new KmatrixError(`invalid --release or --arch (${values.release}, ${values.arch})`, { stage: 'usage', remedy: 'e.g. --release bookworm --arch x86_64' });
    }
    if (arch.data !== 'x86_64') {
      throw new KmatrixError(`--arch ${arch.data} is not supported yet`, { stage: 'usage', remedy: 'crawl x86_64 for now' });
    }
    const mirrors = await detectMirrors();
    const kernels = await crawlDebian(mirrors, release.data, arch.data, log);
    const text = stableJson({ debian: kernels });
    const out = values.out ?? join('kernels', `debian-${release.data}-${arch.data}.json`);
    if (out === '-') process.stdout.write(text);
    else {
      await writeFileAtomic(out, text);
      log(`wrote ${kernels.length} kernels (${new Set(kernels.map((k) => k.kmatrix?.abi)).size} ABIs) to ${out}`);
    }
    return 0;
  },
};
