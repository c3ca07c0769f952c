/**
 * `kmatrix gen` as a library: policy × kernel lists → targets/, with every step's findings
 * returned as data. The CLI prints the result; the request service reads it.
 */
import { genReportFile } from '../model/paths.ts';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import {
  loadKernelList,
  markUnavailable,
  packageLabel,
  type KernelList,
  type ListedKernel,
} from '../model/kernel-list.ts';
import { crawledIndex, pinFromIndex } from './index-digests.ts';
import { distroOfPolicy, loadPolicy, type Policy } from '../model/policy.ts';
import { TARGET_SCHEMA_VERSION, targetSpecSchema, type Target, type TargetSpec } from '../model/target.ts';
import { loadGuestLock } from '../model/guest-lock.ts';
import { withRecipes } from '../recipe/check.ts';
import { loadAllToolchains, loadToolchain, requireLock } from '../model/toolchain.ts';
import { HeaderStore, defaultStoreDir, type Unavailable } from '../packages/store.ts';
import { FAMILIES, familyOfHeaders } from '../distros/registry.ts';
import { listedKernels, type ListedKernels } from './crawler-list.ts';
import { knownDigests, type Resolved } from './resolve.ts';
import { planAndResolve } from './plan-and-resolve.ts';
import { compilersFromHeaders, kernelKey } from './compiler.ts';
import { planTargets, type Plan, type Skipped } from './plan.ts';
import { existingTargetFiles, syncTargets, type SyncReport } from './sync.ts';
import type { LoadedToolchain } from './toolchain-select.ts';

/** One kernel asked for by `--only DISTRO/KERNELRELEASE/ARCH`. */
export interface KernelKey {
  distro: string;
  kernelrelease: string;
  arch: string;
}

export interface GenOptions {
  root: string;
  policyFile: string;
  /** Kernel lists; default: kernels/*.json */
  kernelFiles?: string[];
  dryRun?: boolean;
  pruneRemoved?: boolean;
  /** Just these kernels' targets, ignoring `latest`; every other target file is left as it is. */
  only?: KernelKey[];
  log: (line: string) => void;
}

export interface GenResult {
  sync: SyncReport;
  targets: Target[];
  excluded: Plan['excluded'];
  warnings: string[];
  /** Everything that did not become a target, with why. */
  skipped: Skipped[];
  /** Distros of the lists no family reads, with their entry counts. */
  unsupported: ListedKernels['unsupported'];
  /** "<kernelrelease> <arch>" → gcc major, read from headers in this run. */
  learnedCompilers: Map<string, string>;
}

/** What the matrix leaves out, and why: gen writes it for `kmatrix report`. */
export interface GenReport {
  excluded: Plan['excluded'];
  skipped: Skipped[];
}

/** A file of the workspace, named as the user would (relative to where they are) in every message. */
const inRoot = (root: string, file: string) =>
  isAbsolute(file) ? file : relative(process.cwd(), resolve(root, file)) || file;

async function defaultKernelFiles(root: string): Promise<string[]> {
  try {
    return (await readdir(join(root, 'kernels')))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => join('kernels', f));
  } catch {
    return [];
  }
}

async function loadInputs(
  o: GenOptions,
): Promise<{ policy: Policy; list: KernelList; toolchains: Map<string, LoadedToolchain> }> {
  const loaded = await loadPolicy(inRoot(o.root, o.policyFile), FAMILIES);
  const only = o.only ?? [];
  // On demand, a kernel the policy covers is built even if `latest` trims it from the nightly matrix.
  const policy = only.length ? { ...loaded, matrix: loaded.matrix.map(({ latest: _, ...rule }) => rule) } : loaded;
  const noSmokeTest = Object.entries(policy.drivers)
    .filter(([, d]) => d.smokeTest && !existsSync(join(o.root, d.path, d.smokeTest)))
    .map(([name, d]) => `${o.policyFile}: drivers.${name}.smokeTest: ${join(d.path, d.smokeTest!)} does not exist`);
  if (noSmokeTest.length > 0) {
    throw new KmatrixError("a driver's smoke test is missing", {
      stage: 'policy',
      problems: noSmokeTest,
      remedy: 'add the script or fix the path (it is relative to the driver folder); nothing was written',
    });
  }
  const files = o.kernelFiles ?? (await defaultKernelFiles(o.root));
  if (files.length === 0) {
    const [name, first] = Object.entries(policy.distros)[0] ?? [];
    throw new KmatrixError('no kernel list to generate from', {
      stage: 'gen',
      remedy: `run \`npx kmatrix crawl\` first (it writes kernels/${name ?? '<distro>'}-<arch>.json for each distro of the policy${first ? `, from the ${first.family} archive` : ''}), or pass --kernels FILE`,
    });
  }
  // Lists from several files may share a key ("debian"); keep each file's entries apart.
  const list: KernelList = {};
  for (const f of files) {
    for (const [distro, entries] of Object.entries(await loadKernelList(inRoot(o.root, f))))
      list[`${f}#${distro}`] = entries;
  }
  // Every pinned toolchain is a candidate (gcc matching); each distro's default must be pinned.
  const toolchains = new Map<string, LoadedToolchain>();
  for (const toolchain of await loadAllToolchains(o.root)) {
    if (toolchain.lock) toolchains.set(toolchain.name, { toolchain, lock: toolchain.lock });
  }
  for (const d of Object.values(policy.distros)) {
    if (!toolchains.has(d.toolchain)) requireLock(await loadToolchain(o.root, d.toolchain));
  }
  return { policy, list, toolchains };
}

/** Kernels whose compiler nobody knows yet: read it from their headers (a kernel whose headers cannot be read costs only itself). */
async function learnCompilers(
  kernels: ListedKernel[],
  unknown: ListedKernel[],
  resolved: Resolved,
  store: HeaderStore,
): Promise<{ learned: Map<string, string>; unreadable: Skipped[] }> {
  const wanted = new Set(unknown.map((k) => kernelKey(k.kernelrelease, k.kmatrix.arch)));
  const { learned, failed } = await compilersFromHeaders(
    resolved.targets.filter((t) => wanted.has(kernelKey(t.kernelrelease, t.arch))),
    store,
  );
  for (const k of unknown) {
    const gcc = learned.get(kernelKey(k.kernelrelease, k.kmatrix.arch));
    if (gcc) k.kmatrix.gcc = gcc;
  }
  // Marked unavailable (as a dead URL is), so a rule's `latest` falls back past it and the rule still counts as matching.
  for (const k of kernels) {
    if (!failed.has(kernelKey(k.kernelrelease, k.kmatrix.arch))) continue;
    const holder = familyOfHeaders(k.kmatrix.packages).configPackage(k.kmatrix.packages);
    if (holder) markUnavailable(k, packageLabel(holder));
  }
  const unreadable = resolved.targets.flatMap((t) => {
    const kernel = kernelKey(t.kernelrelease, t.arch);
    const why = failed.get(kernel);
    return why
      ? [{ what: t.name, distro: t.distro, kernel, kind: 'its headers cannot be read (see --verbose)', why }]
      : [];
  });
  return { learned, unreadable };
}

/** `--only`: a kernel asked for by its `uname -r` or by the name its list gives it. */
const asked = (only: KernelKey[], k: ListedKernel) =>
  only.some(
    (w) => w.arch === k.kmatrix.arch && (w.kernelrelease === k.kernelrelease || w.kernelrelease === k.listedAs),
  );

/**
 * The spec of an existing target file, of this schema version or an earlier one (a file gen
 * cannot read is regenerated; it only loses what it could have taught).
 */
async function earlierSpec(file: string): Promise<TargetSpec | undefined> {
  try {
    const { recipe: _r, boot: _b, schemaVersion: _v, ...rest } = JSON.parse(await readFile(file, 'utf8'));
    const parsed = targetSpecSchema.safeParse({ ...rest, schemaVersion: TARGET_SCHEMA_VERSION });
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What earlier runs learned (digests of crawler-listed packages, compilers read from headers) is
 * in the existing targets: reused, so regenerating needs no network. Fills in the compilers.
 */
async function earlierFindings(
  root: string,
  unknown: ListedKernel[],
): Promise<Map<string, { sha256: string; size: number }>> {
  const existing = (await Promise.all((await existingTargetFiles(root)).map((f) => earlierSpec(join(root, f))))).filter(
    (t): t is TargetSpec => t !== undefined,
  );
  const recorded = new Map(
    existing.filter((t) => t.kernel.gcc).map((t) => [kernelKey(t.kernelrelease, t.arch), t.kernel.gcc!]),
  );
  for (const k of unknown) k.kmatrix.gcc = recorded.get(kernelKey(k.kernelrelease, k.kmatrix.arch));
  return knownDigests(existing);
}

export async function generate(o: GenOptions): Promise<GenResult> {
  const only = o.only ?? [];
  const { policy, list, toolchains } = await loadInputs(o);
  // Every target's boot recipe names the guest's busybox by digest.
  const guestLock = await loadGuestLock(o.root);
  const listed = await listedKernels(list, distroOfPolicy(policy));
  // A kernel of a distro the policy does not name is never built: one reason per kernel, which
  // the summary prints once per distro with a count.
  for (const k of listed.kernels.filter((k) => !(k.kmatrix.distro in policy.distros))) {
    listed.unusable.push({
      what: `${k.kmatrix.distro} ${k.kernelrelease}`,
      distro: k.kmatrix.distro,
      why: `the policy has no distro ${k.kmatrix.distro} (declare it under "distros" to build its kernels)`,
    });
  }
  listed.kernels = listed.kernels.filter((k) => k.kmatrix.distro in policy.distros);
  // kernel-crawler entries list only URLs: what a crawled archive index says of the same files pins them.
  if (listed.kernels.some((k) => k.kmatrix.packages.some((p) => !p.sha256))) {
    const pinned = pinFromIndex(listed.kernels, await crawledIndex(o.root));
    if (pinned > 0) o.log(`${pinned} packages pinned by the archive indexes in kernels/ (no download)`);
  }
  if (only.length) listed.kernels = listed.kernels.filter((k) => asked(only, k));
  // The plan for these kernels; with --only, just the targets of the distros asked for.
  const planFor = (kernels: ListedKernel[]) => {
    const p = planTargets(policy, kernels, toolchains);
    return only.length
      ? { ...p, targets: p.targets.filter((t) => only.some((w) => w.distro === t.distro)), keptDistros: [] }
      : p;
  };
  // Planned once before any network: a policy mistake is reported before anything is fetched.
  let plan = planFor(listed.kernels);
  const unknown = listed.kernels.filter((k) => !k.kmatrix.gcc);
  const pending = plan.targets.some(
    (t) => t.headers.some((h) => !h.sha256) || (t.kernel.image && !t.kernel.image.sha256),
  );
  const known =
    unknown.length > 0 || pending
      ? await earlierFindings(o.root, unknown)
      : new Map<string, { sha256: string; size: number }>();
  const store = new HeaderStore(defaultStoreDir(), o.log);
  let resolved: Resolved;
  const unserved = new Map<string, Unavailable>();
  ({ plan, resolved } = await planAndResolve(listed.kernels, planFor, known, store, [], unserved));
  const stillUnknown = unknown.filter((k) => !k.kmatrix.gcc);
  let learned = new Map<string, string>();
  if (stillUnknown.length > 0) {
    const found = await learnCompilers(listed.kernels, stillUnknown, resolved, store);
    learned = found.learned;
    // Plan again so each kernel gets the toolchain with its gcc (the lists' digests are all known by now).
    if (found.learned.size > 0 || found.unreadable.length > 0) {
      ({ plan, resolved } = await planAndResolve(
        listed.kernels,
        planFor,
        new Map([...known, ...knownDigests(resolved.targets)]),
        store,
        [...resolved.skipped, ...found.unreadable],
        unserved,
      ));
    }
  }
  const targets = resolved.targets.map((t) => withRecipes(t, guestLock));
  const sync = await syncTargets(o.root, targets, {
    dryRun: o.dryRun ?? false,
    keepDistros: plan.keptDistros,
    pruneRemoved: o.pruneRemoved ?? false,
    addOnly: only.length > 0,
  });
  const skipped = [...plan.skipped, ...resolved.skipped, ...listed.unusable];
  if (!o.dryRun && only.length === 0) {
    const report: GenReport = { excluded: plan.excluded, skipped };
    await writeFileAtomic(genReportFile(o.root), `${JSON.stringify(report, null, 2)}\n`);
  }
  return {
    sync,
    targets,
    excluded: plan.excluded,
    warnings: plan.warnings,
    skipped,
    unsupported: listed.unsupported,
    learnedCompilers: learned,
  };
}
