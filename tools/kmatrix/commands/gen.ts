import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { loadKernelList, markUnavailable, packageLabel, type KernelList } from '../model/kernel-list.ts';
import { hasCrawlerEntries, listedKernels } from '../gen/crawler-list.ts';
import { detectMirrors } from '../distros/debian/mirrors.ts';
import { HeaderStore, defaultStoreDir, type Unavailable } from '../packages/store.ts';
import { knownDigests, type Resolved } from '../gen/resolve.ts';
import { planAndResolve } from '../gen/plan-and-resolve.ts';
import { compilersFromHeaders, kernelKey } from '../gen/compiler.ts';
import { genReportFile, type GenReport } from '../report/data.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { isRemoved, loadTargetFile, type Target } from '../model/target.ts';
import { planTargets } from '../gen/plan.ts';
import { loadPolicy, POLICY_FILE } from '../model/policy.ts';
import { existingTargetFiles, syncTargets } from '../gen/sync.ts';
import { renderSkipped } from '../gen/skipped.ts';
import { loadAllToolchains, loadToolchain, requireLock } from '../model/toolchain.ts';
import type { LoadedToolchain } from '../gen/toolchain-select.ts';
import { log, parse, type Command } from './command.ts';

const help = `Usage: npx kmatrix gen [--policy FILE] [--kernels FILE ...] [--dry-run] [--verbose] [--prune-removed] [--only D/K/A ...]

Turns the support-matrix policy and the kernel lists into one folder per target:
  targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json
Deterministic: the same inputs give a byte-identical tree. Targets no longer in the
matrix are removed. Prints what was added, removed and changed. Every problem is
reported before anything is written; on error nothing changes.

Kernel lists are those \`kmatrix crawl\` writes, or kernel-crawler output as falcosecurity
publishes it (x86_64/list.json, aarch64/list.json; the 2022 and the current format). Of a
crawler list, Debian entries are read from their header URLs: the real \`uname -r\` comes from the
header package, this machine's Debian mirror is tried before the listed ones, and the SHA256 of
each package a target needs is resolved once by downloading it into the header store
($KMATRIX_STORE) and recorded in target.json. Entries kmatrix cannot build (other distros,
kernelconfigdata-only entries, packages no mirror serves) are reported, never silently dropped:
a package that cannot be fetched for any reason (HTTP 4xx, 5xx after retries, DNS, TLS, a
reset, a short body) skips only its own kernel, with the reason; each reason is printed once
with a count, and the skipped entries are counted per distro.

A target that leaves the matrix is not deleted: its target.json becomes a small "removed"
marker (no Nx project). Nx treats a deleted project file as a reason to re-run every task,
so deleting it would make \`nx affected\` rebuild the whole matrix for one dropped kernel.
--prune-removed deletes the markers (do it when a full, cached re-check is fine).

Options:
  --policy FILE    the policy (default: ${POLICY_FILE})
  --kernels FILE   a kernel list (repeatable; default: kernels/*.json)
  --dry-run        report what would change, write nothing
  --verbose        list every skipped entry (by default each reason is printed once, with a count)
  --prune-removed  delete the markers of removed targets (see below)
  --only DISTRO/KERNELRELEASE/ARCH
                   generate just the targets of this kernel (repeatable), ignoring the rules'
                   \`latest\` (the kernel is in use somewhere: \`kmatrix request\`), and leave every
                   other target file as it is; exit 1 if the policy selects no target for it
  -h, --help       show this help
`;

/** DISTRO/KERNELRELEASE/ARCH, e.g. debian-bookworm/6.1.0-47-amd64/x86_64. */
function parseKernelKey(text: string): { distro: string; kernelrelease: string; arch: string } {
  const m = text.match(/^([a-z0-9][a-z0-9._-]*)\/([A-Za-z0-9][A-Za-z0-9.+~_-]*)\/(x86_64|aarch64)$/);
  if (!m) throw new KmatrixError(`--only ${text}: expected DISTRO/KERNELRELEASE/ARCH, e.g. debian-bookworm/6.1.0-47-amd64/x86_64`, { stage: 'usage', remedy: 'see `npx kmatrix gen --help`' });
  return { distro: m[1]!, kernelrelease: m[2]!, arch: m[3]! };
}

async function defaultKernelFiles(root: string): Promise<string[]> {
  try {
    return (await readdir(join(root, 'kernels'))).filter((f) => f.endsWith('.json')).sort().map((f) => join('kernels', f));
  } catch {
    return [];
  }
}

export const genCommand: Command = {
  name: 'gen',
  summary: 'generate targets/ from the policy and kernel lists',
  help,
  async run(argv) {
    const { values } = parse('gen', argv, {
      policy: { type: 'string', default: POLICY_FILE },
      kernels: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean', default: false },
      'prune-removed': { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      verbose: { type: 'boolean', default: false },
    });
    const only = (values.only ?? []).map(parseKernelKey);
    const root = resolve('.');
    const loaded = await loadPolicy(values.policy);
    // On demand, a kernel the policy covers is built even if `latest` trims it from the nightly matrix.
    const policy = only.length ? { ...loaded, matrix: loaded.matrix.map(({ latest: _, ...rule }) => rule) } : loaded;
    const noSmokeTest = Object.entries(policy.drivers)
      .filter(([, d]) => d.smokeTest && !existsSync(join(root, d.path, d.smokeTest)))
      .map(([name, d]) => `${values.policy}: drivers.${name}.smokeTest: ${join(d.path, d.smokeTest!)} does not exist`);
    if (noSmokeTest.length > 0) {
      throw new KmatrixError('a driver\'s smoke test is missing', { stage: 'policy', problems: noSmokeTest, remedy: 'add the script or fix the path (it is relative to the driver folder); nothing was written' });
    }
    const files = values.kernels ?? (await defaultKernelFiles(root));
    if (files.length === 0) {
      throw new KmatrixError('no kernel list to generate from', {
        stage: 'gen',
        remedy: 'run `npx kmatrix crawl debian` first (it writes kernels/debian-bookworm-x86_64.json), or pass --kernels FILE',
      });
    }
    // Lists from several files may share a key ("debian"); keep each file's entries apart.
    const list: KernelList = {};
    for (const f of files) {
      for (const [distro, entries] of Object.entries(await loadKernelList(f))) list[`${f}#${distro}`] = entries;
    }
    // Every pinned toolchain is a candidate (gcc matching); each distro's default must be pinned.
    const toolchains = new Map<string, LoadedToolchain>();
    for (const toolchain of await loadAllToolchains(root)) {
      if (toolchain.lock) toolchains.set(toolchain.name, { toolchain, lock: toolchain.lock });
    }
    for (const d of Object.values(policy.distros)) {
      if (!toolchains.has(d.toolchain)) requireLock(await loadToolchain(root, d.toolchain));
    }
    const listed = listedKernels(list, hasCrawlerEntries(list) ? await detectMirrors() : undefined);
    const wantedKernels = (entries: typeof listed.kernels) => (only.length ? entries.filter((k) => only.some((o) => o.arch === k.kmatrix.arch && (o.kernelrelease === k.kernelrelease || o.kernelrelease === k.kmatrix.abi + '-' + k.kmatrix.flavour))) : entries);
    listed.kernels = wantedKernels(listed.kernels);
    // The plan for these kernels; with --only, just the targets of the distros asked for.
    const planFor = (kernels: typeof listed.kernels) => {
      const p = planTargets(policy, kernels, toolchains);
      return only.length ? { ...p, targets: p.targets.filter((t) => only.some((o) => o.distro === t.distro)), keptDistros: [] } : p;
    };
    // Planned once before any network: a policy mistake is reported before anything is fetched.
    let plan = planFor(listed.kernels);
    const unknown = listed.kernels.filter((k) => !k.kmatrix.gcc);
    // What earlier runs learned (digests of crawler-listed packages, compilers read from headers)
    // is in the existing targets: reuse it, so regenerating needs no network.
    let known = new Map<string, { sha256: string; size: number }>();
    if (unknown.length > 0 || plan.targets.some((t) => t.headers.some((h) => !h.sha256) || (t.kernel.image && !t.kernel.image.sha256))) {
      const existing = (await Promise.all((await existingTargetFiles(root)).map((f) => loadTargetFile(join(root, f))))).filter((t): t is Target => !isRemoved(t));
      known = knownDigests(existing);
      const recorded = new Map(existing.filter((t) => t.kernel.gcc).map((t) => [kernelKey(t.kernelrelease, t.arch), t.kernel.gcc!]));
      for (const k of unknown) k.kmatrix.gcc = recorded.get(kernelKey(k.kernelrelease, k.kmatrix.arch));
    }
    const store = new HeaderStore(defaultStoreDir(), log);
    let resolved: Resolved;
    const unserved = new Map<string, Unavailable>();
    ({ plan, resolved } = await planAndResolve(listed.kernels, planFor, known, store, [], unserved));
    // Kernels whose compiler nobody knows yet: read it from their headers, then plan again so each
    // gets the toolchain with its gcc (the lists' digests are all known by now).
    const stillUnknown = unknown.filter((k) => !k.kmatrix.gcc);
    if (stillUnknown.length > 0) {
      const wanted = new Set(stillUnknown.map((k) => kernelKey(k.kernelrelease, k.kmatrix.arch)));
      const { learned, failed } = await compilersFromHeaders(resolved.targets.filter((t) => wanted.has(kernelKey(t.kernelrelease, t.arch))), store);
      for (const k of stillUnknown) {
        const gcc = learned.get(kernelKey(k.kernelrelease, k.kmatrix.arch));
        if (gcc) k.kmatrix.gcc = gcc;
      }
      for (const [key, gcc] of learned) log(`compiler of ${key.replace(' ', ' (')}) from its headers: gcc-${gcc}`);
      // A kernel whose headers cannot be read costs only itself: it is marked unavailable (as a
      // dead URL is), so a rule's `latest` falls back past it and the rule still counts as matching.
      for (const k of listed.kernels) {
        const flavour = k.kmatrix.packages.find((p) => p.role === 'flavour');
        if (flavour && failed.has(kernelKey(k.kernelrelease, k.kmatrix.arch))) markUnavailable(k, packageLabel(flavour));
      }
      const unreadable = resolved.targets.flatMap((t) => {
        const kernel = kernelKey(t.kernelrelease, t.arch);
        const why = failed.get(kernel);
        return why ? [{ what: t.name, distro: t.distro, kernel, kind: 'its headers cannot be read (see --verbose)', why }] : [];
      });
      if (learned.size > 0 || failed.size > 0) {
        ({ plan, resolved } = await planAndResolve(listed.kernels, planFor, new Map([...known, ...knownDigests(resolved.targets)]), store, [...resolved.skipped, ...unreadable], unserved));
      }
    }
    for (const w of plan.warnings) log(`warning: ${w}`);
    const report = await syncTargets(root, resolved.targets, { dryRun: values['dry-run'], keepDistros: plan.keptDistros, pruneRemoved: values['prune-removed'], addOnly: only.length > 0 });
    if (!values['dry-run'] && only.length === 0) {
      // For `kmatrix report`: what the matrix leaves out, and why (a local artifact, not committed).
      const genReport: GenReport = { excluded: plan.excluded, skipped: [...plan.skipped, ...resolved.skipped, ...listed.unusable] };
      await writeFileAtomic(genReportFile(root), `${JSON.stringify(genReport, null, 2)}\n`);
    }
    const verb = values['dry-run'] ? 'would be ' : '';
    for (const n of report.added) log(`+ ${n}`);
    for (const n of report.changed) log(`~ ${n}`);
    for (const n of report.removed) log(`- ${n}`);
    if (report.pruned > 0) log(`${report.pruned} removed-target marker${report.pruned === 1 ? '' : 's'} ${verb}pruned`);
    for (const x of plan.excluded) log(`excluded ${x.target}: ${x.reason}`);
    for (const t of resolved.targets) if (t.kernel.imageGap) log(`no kernel image for ${t.name}: ${t.kernel.imageGap} (it builds; test-driver reports the gap)`);
    for (const line of renderSkipped([...plan.skipped, ...resolved.skipped, ...listed.unusable], listed.unsupported, values.verbose)) log(line);
    if (only.length > 0 && resolved.targets.length === 0) {
      throw new KmatrixError(`the policy selects no target for ${values.only!.join(', ')}`, {
        stage: 'gen',
        remedy: 'check the kernel is in a kernel list (`npx kmatrix crawl debian`) and that a matrix rule covers its distro, arch, flavour and version (see the skipped/excluded lines above)',
      });
    }
    log(`${resolved.targets.length} targets: ${report.added.length} ${verb}added, ${report.changed.length} ${verb}changed, ${report.removed.length} ${verb}removed, ${report.unchanged} unchanged`);
    return 0;
  },
};
