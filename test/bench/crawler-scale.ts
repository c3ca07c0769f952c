/**
 * gen on a kernel-crawler list at the scale of the real one, against gen on as many Debian entries.
 *
 * The real list (falcosecurity/kernel-crawler's x86_64/ and aarch64/list.json at cfa3148, the
 * 2022-10-03 update) had 6,434 entries in 13 distros. Its per-distro counts are below; the entries
 * are the real samples in test/fixtures/kernel-crawler (every distro of it, both arches), each
 * repeated with its kernel's build numbers shifted (5.15.0-48 → 5.15.0-1048 in the release and
 * in every URL alike) until the distro has its real count. So every entry keeps the shape of a real
 * one: its mirrors, its URL layout, its oddities (../ segments, display-name keys, integer
 * kernelversion, unsupported distros).
 *
 * What a crawled archive index says of each package is in kernels/ (as after `kmatrix crawl`), so
 * gen downloads nothing: the figure is the planning of thousands of entries, not the network.
 */
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { listedKernels } from '../../tools/kmatrix/gen/crawler-list.ts';
import { kernelList, type KernelEntry, type ListedKernel } from '../../tools/kmatrix/model/kernel-list.ts';
import { createWorkspace, repoRoot } from '../support/workspace.ts';
import { measure, type Measured } from './peak-memory.ts';

/** Entries per distro key in the real 2022-10-03 lists (the keys are the 2022 display names). */
const REAL_COUNTS: Record<'x86_64' | 'aarch64', Record<string, number>> = {
  x86_64: {
    AmazonLinux: 90,
    AmazonLinux2: 147,
    AmazonLinux2022: 5,
    CentOS: 247,
    Fedora: 6,
    Oracle6: 324,
    Oracle7: 423,
    Oracle8: 104,
    PhotonOS: 195,
    Debian: 26,
    Ubuntu: 2686,
    Flatcar: 285,
    Minikube: 6,
  },
  aarch64: {
    AmazonLinux2: 126,
    AmazonLinux2022: 5,
    CentOS: 25,
    Fedora: 6,
    PhotonOS: 193,
    Debian: 20,
    Ubuntu: 1436,
    Flatcar: 76,
    Minikube: 3,
  },
};

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The entry with every "A.B.C-N" build number in it shifted by `by` (release, versions, URLs
 * alike); a release without one (Flatcar's 3033.2.0, Minikube's) has its last number shifted,
 * wherever it appears.
 */
function shifted(entry: KernelEntry, by: number): KernelEntry {
  if (by === 0) return entry;
  const text = JSON.stringify(entry);
  const buildNumber = /(\d+\.\d+\.\d+-)(\d+)/g;
  if (buildNumber.test(entry.kernelrelease))
    return JSON.parse(text.replace(buildNumber, (_m, head: string, n: string) => `${head}${Number(n) + by}`));
  const release = entry.kernelrelease.replace(
    /(\d+)(\D*)$/,
    (_m, n: string, tail: string) => `${Number(n) + by}${tail}`,
  );
  return JSON.parse(
    text.replaceAll(`"${entry.kernelrelease}"`, `"${release}"`).replaceAll(`/${entry.kernelrelease}/`, `/${release}/`),
  );
}

/** `count` entries from `samples`, round robin, each round shifted by another 1000. */
function repeated(samples: KernelEntry[], count: number): KernelEntry[] {
  return Array.from({ length: count }, (_, i) =>
    shifted(samples[i % samples.length]!, 1000 * Math.floor(i / samples.length)),
  );
}

async function samplesOf(arch: 'x86_64' | 'aarch64'): Promise<Record<string, KernelEntry[]>> {
  const text = await readFile(join(repoRoot, `test/fixtures/kernel-crawler/${arch}-sample.json`), 'utf8');
  return kernelList.parse(JSON.parse(text));
}

/** The scaled lists, both arches: every distro at its real count, or only Debian at `debianOnly` entries. */
async function scaledLists(debianOnly?: number): Promise<Record<string, Record<string, KernelEntry[]>>> {
  const out: Record<string, Record<string, KernelEntry[]>> = {};
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const samples = await samplesOf(arch);
    const counts = debianOnly
      ? { Debian: Math.round((debianOnly * (arch === 'x86_64' ? 4544 : 1890)) / 6434) }
      : REAL_COUNTS[arch];
    out[arch] = Object.fromEntries(
      Object.entries(counts).flatMap(([key, n]) => (samples[key]?.length ? [[key, repeated(samples[key]!, n)]] : [])),
    );
  }
  return out;
}

/** What a crawl of the archives would have recorded for these kernels: every package pinned, gcc known. */
function indexOf(kernels: ListedKernel[]): { index: KernelEntry[] } {
  const pin = <P extends { url: string }>(p: P) => ({ ...p, sha256: sha(p.url), size: 1_000_000 });
  return {
    index: kernels.map((k) => ({
      kernelversion: '1',
      kernelrelease: k.kernelrelease,
      target: 'index',
      kmatrix: {
        ...k.kmatrix,
        gcc: '12',
        packages: k.kmatrix.packages.map(pin),
        ...(k.kmatrix.image ? { image: pin(k.kmatrix.image) } : {}),
      },
    })),
  };
}

export interface CrawlerScale {
  entries: number;
  targets: number;
  reasons: number;
  mixed: Measured;
  debian: Measured & { targets: number };
}

/** One workspace per side: policy naming every distro the list's kernels are of, index in kernels/, gen timed. */
async function genSide(
  lists: Record<string, Record<string, KernelEntry[]>>,
  runs: number,
): Promise<Measured & { targets: number }> {
  const ws = await createWorkspace('kmatrix-bench-crawler-');
  try {
    await rm(join(ws.dir, 'kernels'), { recursive: true, force: true });
    const distros = new Map<string, { family: string; distro?: string; release: string }>();
    const distroOf = (family: string, release: string, os?: string) => {
      const name = `${os ?? family}-${release}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-');
      distros.set(name, { family, ...(os ? { distro: os } : {}), release });
      return name;
    };
    const kernels: ListedKernel[] = [];
    for (const [arch, list] of Object.entries(lists)) {
      await ws.write(`crawler/${arch}.json`, JSON.stringify(list));
      kernels.push(...(await listedKernels(list, distroOf)).kernels);
    }
    await ws.write('kernels/index.json', JSON.stringify(indexOf(kernels)));
    const policy = {
      drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } },
      distros: Object.fromEntries([...distros].map(([name, d]) => [name, { ...d, toolchain: 'debian-bookworm' }])),
      matrix: [...distros.keys()].map((name) => {
        const own = kernels.filter((k) => k.kmatrix.distro === name);
        return {
          driver: 'kmx-echo',
          distro: name,
          archs: [...new Set(own.map((k) => k.kmatrix.arch))],
          flavours: [...new Set(own.map((k) => k.kmatrix.flavour))],
          kernels: ['*'],
        };
      }),
    };
    await ws.write('support-matrix.json', JSON.stringify(policy, null, 2));
    const args = Object.keys(lists).flatMap((arch) => ['--kernels', `crawler/${arch}.json`]);
    // Each run from no targets at all (the median of `runs`; the peak is the highest seen).
    const measured: Measured[] = [];
    for (let i = 0; i < runs; i++) {
      await rm(join(ws.dir, 'targets'), { recursive: true, force: true });
      const m = await measure(process.execPath, [join(ws.dir, 'tools/kmatrix/cli.ts'), 'gen', ...args], {
        cwd: ws.dir,
        env: ws.env,
      });
      if (m.exitCode !== 0) throw new Error(`gen failed:\n${m.output.slice(-3000)}`);
      measured.push(m);
    }
    const gen = {
      ...measured.sort((a, b) => a.seconds - b.seconds)[Math.floor(runs / 2)]!,
      peakBytes: Math.max(...measured.map((m) => m.peakBytes)),
    };
    if (/resolving the SHA256 of/.test(gen.output))
      throw new Error('gen downloaded a package; the index should pin all');
    const targets = Number(gen.output.match(/^(\d+) targets: /m)?.[1] ?? Number.NaN);
    return { ...gen, targets };
  } finally {
    await ws.remove();
  }
}

export async function crawlerScale(runs: number): Promise<CrawlerScale> {
  const lists = await scaledLists();
  const entries = Object.values(lists).reduce((n, l) => n + Object.values(l).flat().length, 0);
  const mixed = await genSide(lists, runs);
  const debian = await genSide(await scaledLists(entries), runs);
  const reasons = mixed.output.match(/^skipped /gm)?.length ?? 0;
  return { entries, targets: mixed.targets, reasons, mixed, debian };
}
