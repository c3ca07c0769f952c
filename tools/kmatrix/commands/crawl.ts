import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { crawlDebian, type IndexedPackage } from '../distros/debian/archive.ts';
import { markUnavailable } from '../gen/availability.ts';
import { detectMirrors } from '../distros/debian/mirrors.ts';
import { stableJson, writeFileAtomic } from '../core/atomic-file.ts';
import { arch as archSchema, identifier, type Arch } from '../model/names.ts';
import { loadPolicy, POLICY_FILE } from '../model/policy.ts';
import { KmatrixError } from '../core/errors.ts';
import { log, parse, type Command } from './command.ts';

const help = `Usage: npx kmatrix crawl debian [--release R[,R…]] [--arch A[,A…]] [--out FILE]

Reads the Debian archive's Packages indexes over HTTP (<release>, <release>-updates,
<release>-security; main) and writes, per release and arch, the kernel list in
kernel-crawler's JSON shape:
  { "debian": [ { kernelversion, kernelrelease, target, headers: [urls], kmatrix: {...} } ] }
where kmatrix.packages names each header package a build needs (flavour, -common,
linux-kbuild — for arm64 kernels both the amd64 kbuild used to cross-compile and the
arm64 one for native runners) with its SHA256 and size from the index, and kmatrix.gcc
the compiler the kernel was built with. No .deb is downloaded.

By default it crawls what ${POLICY_FILE} needs: every debian-<release> under "distros",
for every arch a matrix rule names.

The mirror is the one in /etc/apt/sources.list.d/ (override: KMATRIX_DEBIAN_MIRROR,
KMATRIX_DEBIAN_SECURITY_MIRROR).

Options:
  --release LIST  Debian releases, e.g. bullseye,bookworm,trixie
  --arch LIST     x86_64, aarch64
  --out FILE      where to write, for a single release and arch ("-" = stdout);
                  default: kernels/debian-<release>-<arch>.json
  --no-check      do not HEAD each package URL (by default packages the index lists
                  but the mirror does not serve are recorded in kmatrix.unavailable,
                  and gen reports those kernels instead of generating failing targets)
`;

function list<T>(value: string, schema: { safeParse(v: unknown): { success: boolean; data?: T } }, flag: string): T[] {
  return value.split(',').map((v) => {
    const r = schema.safeParse(v.trim());
    if (!r.success) throw new KmatrixError(`invalid ${flag} value "${v}"`, { stage: 'usage', remedy: 'see `npx kmatrix crawl --help`' });
    return r.data as T;
  });
}

async function fromPolicy(): Promise<{ releases: string[]; archs: Arch[] }> {
  if (!existsSync(POLICY_FILE)) return { releases: ['bookworm'], archs: ['x86_64'] };
  const policy = await loadPolicy(POLICY_FILE);
  const releases = Object.keys(policy.distros).filter((d) => d.startsWith('debian-')).map((d) => d.slice('debian-'.length));
  const archs = [...new Set(policy.matrix.flatMap((r) => r.archs))];
  return { releases, archs };
}

export const crawlCommand: Command = {
  name: 'crawl',
  summary: 'list the kernels a distro archive offers, with header package digests',
  help,
  async run(argv) {
    const { values, positionals } = parse('crawl', argv, {
      release: { type: 'string' },
      arch: { type: 'string' },
      out: { type: 'string' },
      check: { type: 'boolean', default: true },
    }, true);
    if (positionals.length !== 1 || positionals[0] !== 'debian') {
      throw new KmatrixError(`crawl needs the source to crawl: \`debian\`${positionals.length ? ` (got: ${positionals.join(' ')})` : ''}`, {
        stage: 'usage',
        remedy: 'run `npx kmatrix crawl debian`; see `npx kmatrix crawl --help`',
      });
    }
    const defaults = await fromPolicy();
    const releases = values.release ? list<string>(values.release, identifier, '--release') : defaults.releases;
    const archs = values.arch ? list<Arch>(values.arch, archSchema, '--arch') : defaults.archs;
    if (values.out && releases.length * archs.length !== 1) {
      throw new KmatrixError('--out takes one release and one arch', { stage: 'usage', remedy: 'drop --out to write kernels/debian-<release>-<arch>.json for each' });
    }
    const mirrors = await detectMirrors();
    const cache = new Map<string, Promise<IndexedPackage[]>>();
    for (const release of releases) {
      for (const arch of archs) {
        const kernels = await crawlDebian(mirrors, release, arch, log, cache);
        if (values.check) await markUnavailable(kernels, log);
        const text = stableJson({ debian: kernels });
        const out = values.out ?? join('kernels', `debian-${release}-${arch}.json`);
        if (out === '-') process.stdout.write(text);
        else {
          await writeFileAtomic(out, text);
          log(`wrote ${kernels.length} kernels (${new Set(kernels.map((k) => k.kmatrix?.abi)).size} ABIs) to ${out}`);
        }
      }
    }
    return 0;
  },
};
