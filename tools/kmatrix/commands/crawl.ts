import { stableJson, writeFileAtomic } from '../core/atomic-file.ts';
import { KmatrixError } from '../core/errors.ts';
import { arch as archSchema, identifier, type Arch } from '../model/names.ts';
import { POLICY_FILE } from '../model/policy.ts';
import { FAMILIES, familyNames } from '../distros/registry.ts';
import { crawl, crawlJobs } from '../gen/crawl.ts';
import { defineCommand, log } from './command.ts';

const about = `Reads a distro family's archive indexes over HTTP and writes, per distro and arch, the
kernel list in kernel-crawler's JSON shape:
  { "<family>": [ { kernelversion, kernelrelease, target, headers: [urls], kmatrix: {...} } ] }
where kmatrix.packages names each header package a build needs with its SHA256 and size
from the index, and kmatrix.gcc the compiler the kernel was built with. No package is
downloaded.

By default it crawls every distro of ${POLICY_FILE} (each through its "family" and
"release"), for every arch its matrix rules name, into kernels/<distro>-<arch>.json.
FAMILY limits it to that family's distros; with --release (and --distro, for a family
that serves several), it crawls those releases whether the policy names them or not.

Families:
${FAMILIES.map((f) => `  ${f.name.padEnd(8)}${f.crawlHelp.replace(/\n/g, '\n          ')}`).join('\n')}
`;

function list<T>(value: string, schema: { safeParse(v: unknown): { success: boolean; data?: T } }, flag: string): T[] {
  return value.split(',').map((v) => {
    const r = schema.safeParse(v.trim());
    if (!r.success)
      throw new KmatrixError(`invalid ${flag} value "${v}"`, {
        stage: 'usage',
        remedy: 'see `npx kmatrix crawl --help`',
      });
    return r.data as T;
  });
}

export const crawlCommand = defineCommand({
  name: 'crawl',
  summary: 'list the kernels a distro archive offers, with header package digests',
  args: '[FAMILY]',
  about,
  options: {
    release: { type: 'string', value: 'LIST', help: 'releases of FAMILY, e.g. bullseye,bookworm,trixie' },
    distro: {
      type: 'string',
      value: 'ID',
      help: 'with --release: the distro of a family that serves several (rpm: fedora, almalinux, amazonlinux, …)',
    },
    arch: { type: 'string', value: 'LIST', help: 'x86_64, aarch64' },
    out: {
      type: 'string',
      path: true,
      value: 'FILE',
      help: 'where to write, for a single distro and arch ("-" = stdout)',
    },
    check: {
      type: 'boolean',
      default: true,
      help: `do not HEAD each package URL (by default packages the index lists
        but the mirror does not serve are recorded in kmatrix.unavailable,
        and gen reports those kernels instead of generating failing targets)`,
    },
  },
  async run({ values, positionals }) {
    if (positionals.length > 1 || (positionals[0] !== undefined && !familyNames().includes(positionals[0]))) {
      throw new KmatrixError(
        `crawl takes at most one distro family (${familyNames().join(', ')}); got: ${positionals.join(' ')}`,
        {
          stage: 'usage',
          remedy: 'run `npx kmatrix crawl` for every distro of the policy; see `npx kmatrix crawl --help`',
        },
      );
    }
    const jobs = await crawlJobs(POLICY_FILE, {
      ...(positionals[0] ? { family: positionals[0] } : {}),
      ...(values.release ? { releases: list<string>(values.release, identifier, '--release') } : {}),
      ...(values.distro ? { os: values.distro } : {}),
      ...(values.arch ? { archs: list<Arch>(values.arch, archSchema, '--arch') } : {}),
    });
    if (values.out && jobs.length !== 1) {
      throw new KmatrixError(`--out takes one distro and one arch (this crawl has ${jobs.length})`, {
        stage: 'usage',
        remedy: 'drop --out to write kernels/<distro>-<arch>.json for each',
      });
    }
    await crawl(jobs, values.check, log, async (job, list) => {
      const text = stableJson(list);
      const out = values.out ?? job.file;
      if (out === '-') process.stdout.write(text);
      else {
        await writeFileAtomic(out, text);
        const kernels = Object.values(list).flat();
        log(`wrote ${kernels.length} kernels (${new Set(kernels.map((k) => k.kmatrix?.abi)).size} ABIs) to ${out}`);
      }
    });
    return 0;
  },
});
