/**
 * Policy × kernel list → the set of targets, computed purely (no Docker, no network), so every
 * problem is found before a single file is written.
 */
import { KmatrixError } from '../core/errors.ts';
import { packageLabel, type ListedKernel } from '../model/kernel-list.ts';
import { compareVersions } from '../model/version.ts';
import { kbuildArch, type Arch } from '../model/names.ts';
import { matchesRelease, type MatrixRule, type Policy } from '../model/policy.ts';
import {
  BUILD_TIMESTAMP,
  CONTAINER_SRC,
  TARGET_SCHEMA_VERSION,
  type DraftTarget,
  type Target,
} from '../model/target.ts';
import { projectName } from '../model/target-place.ts';
import { gnuTriplet, type ToolchainSpec } from '../model/toolchain.ts';
import { familyNamed } from '../distros/registry.ts';
import type { DistroFamily } from '../distros/family.ts';
import { selectToolchain, type LoadedToolchain, type Mismatch } from './toolchain-select.ts';

/** A kernel list entry or target that could not become a target, and why. */
export interface Skipped {
  what: string;
  why: string;
  /** The distro it belongs to (a policy distro, or a kernel list's distro key), for the per-distro counts */
  distro?: string;
  /** The reason in a few words shared by every entry it hits (e.g. "HTTP 404"), to print it once; default: why */
  kind?: string;
  /** The kernel it is about ("<kernelrelease> <arch>"), when several entries (one per driver) share one: counted once */
  kernel?: string;
}

export interface Plan {
  /** Sorted by name; headers of crawler-listed kernels may still lack digests (see gen/resolve.ts). */
  targets: DraftTarget[];
  excluded: { target: string; reason: string }[];
  skipped: Skipped[];
  warnings: string[];
  /** Distros with no kernel at all in the lists (a failed crawl): their existing targets are kept. */
  keptDistros: string[];
}

export function buildSettings(
  driver: string,
  arch: Arch,
  toolchain: ToolchainSpec,
  strictCompiler: boolean,
): Target['build'] {
  const cross = toolchain.hostArch !== arch ? [`CROSS_COMPILE=${gnuTriplet[arch]}-`] : [];
  return {
    makeArgs: [`ARCH=${kbuildArch[arch]}`, ...cross],
    strictCompiler,
    kcflags: [`-ffile-prefix-map=${CONTAINER_SRC}/=/usr/src/${driver}/`],
    env: {
      KBUILD_BUILD_TIMESTAMP: BUILD_TIMESTAMP,
      KBUILD_BUILD_USER: 'kmatrix',
      KBUILD_BUILD_HOST: 'kmatrix',
      LC_ALL: 'C',
      TZ: 'UTC',
    },
  };
}

function inRange(rule: MatrixRule, abi: string): boolean {
  const { from, below } = rule.versions ?? {};
  return (!from || compareVersions(abi, from) >= 0) && (!below || compareVersions(abi, below) < 0);
}

/** Packages an entry needs on a runner of `runner` arch that the mirror does not serve. */
function missingFor(e: ListedKernel, runner: Arch): string[] {
  return e.kmatrix.packages
    .filter((p) => !p.hostArch || p.hostArch === runner)
    .map(packageLabel)
    .filter((n) => e.kmatrix.unavailable?.includes(n));
}

/**
 * The kernels a rule selects. `latest` counts only kernels the mirror can serve, so a mirror gap
 * falls back to the newest buildable ABI; the gaps themselves are reported as skipped.
 */
function selectKernels(
  rule: MatrixRule,
  runner: Arch,
  entries: ListedKernel[],
  skipped: Skipped[],
): { chosen: ListedKernel[]; matched: number } {
  const chosen = new Set<ListedKernel>();
  let matched = 0;
  for (const pattern of rule.kernels) {
    const matching = entries.filter(
      (e) =>
        e.kmatrix.distro === rule.distro &&
        rule.archs.includes(e.kmatrix.arch) &&
        rule.flavours.includes(e.kmatrix.flavour) &&
        matchesRelease(pattern, e.kmatrix.abi) &&
        inRange(rule, e.kmatrix.abi),
    );
    matched += matching.length;
    const servable = matching.filter((e) => {
      const gone = missingFor(e, runner);
      if (gone.length > 0)
        skipped.push({
          what: `${e.kernelrelease} (${e.kmatrix.arch})`,
          distro: e.kmatrix.distro,
          kernel: `${e.kernelrelease} ${e.kmatrix.arch}`,
          kind: 'the mirror does not serve packages its index lists (a mirror gap)',
          why: `the mirror does not serve ${gone.join(', ')} although its index lists it (a mirror gap)`,
        });
      return gone.length === 0;
    });
    for (const arch of new Set(servable.map((e) => e.kmatrix.arch))) {
      const ofArch = servable.filter((e) => e.kmatrix.arch === arch);
      const abis = [...new Set(ofArch.map((e) => e.kmatrix.abi))].sort(compareVersions).reverse();
      const keep = new Set(rule.latest ? abis.slice(0, rule.latest) : abis);
      for (const e of ofArch) if (keep.has(e.kmatrix.abi)) chosen.add(e);
    }
  }
  return { chosen: [...chosen], matched };
}

/** The kernel image to boot, or why there is none (test-driver reports that as an infrastructure gap). */
function imageOf(e: ListedKernel, family: DistroFamily): Pick<DraftTarget['kernel'], 'image' | 'imageGap'> {
  const image = e.kmatrix.image;
  if (!image) return { imageGap: family.noImage(e.kernelrelease, e.kmatrix.packageVersion) };
  if (e.kmatrix.unavailable?.includes(image.name))
    return { imageGap: `the mirror does not serve ${image.name} ${image.version} although its index lists it` };
  return { image };
}

function noteMismatch(
  into: Map<string, { distro: string; mismatch: Mismatch; kernels: Set<string> }>,
  distro: string,
  e: ListedKernel,
  mismatch: Mismatch,
): void {
  const key = `${distro} ${mismatch.gcc} ${mismatch.toolchain}`;
  const entry = into.get(key) ?? { distro, mismatch, kernels: new Set<string>() };
  entry.kernels.add(`${e.kernelrelease} (${e.kmatrix.arch})`);
  into.set(key, entry);
}

/** One line per distro and gcc major no toolchain has: how many kernels, which, and what builds them instead. */
function renderMismatches(
  mismatches: Map<string, { distro: string; mismatch: Mismatch; kernels: Set<string> }>,
): string[] {
  return [...mismatches.values()].map(({ distro, mismatch: m, kernels }) => {
    const list = [...kernels];
    const shown = list.slice(0, 3).join(', ') + (list.length > 3 ? `, and ${list.length - 3} more` : '');
    return `no toolchain for gcc ${m.gcc}: ${list.length} ${distro} kernel${list.length === 1 ? '' : 's'} (${shown}) built with gcc-${m.gcc} build with ${m.toolchain} (gcc-${m.toolchainGcc}); add a toolchain with "gcc": "${m.gcc}", or set strictCompiler to refuse them`;
  });
}

export function planTargets(policy: Policy, entries: ListedKernel[], toolchains: Map<string, LoadedToolchain>): Plan {
  const skipped: Skipped[] = [];
  const byName = new Map<string, { target: DraftTarget; rule: number }>();
  const excluded: Plan['excluded'] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  const present = new Set(entries.map((e) => e.kmatrix.distro));
  const keptDistros = new Set<string>();
  const mismatches = new Map<string, { distro: string; mismatch: Mismatch; kernels: Set<string> }>();

  policy.matrix.forEach((rule, ruleIndex) => {
    const driver = policy.drivers[rule.driver]!;
    // A crawler drops a distro whose crawl failed; that never means its kernels were removed.
    if (!present.has(rule.distro)) {
      if (!keptDistros.has(rule.distro)) {
        warnings.push(
          `no kernels of ${rule.distro} in the kernel lists (did its crawl fail?): keeping its existing targets unchanged`,
        );
      }
      keptDistros.add(rule.distro);
      return;
    }
    const buildable = rule.archs.filter((arch) => {
      const s = selectToolchain(policy, rule.distro, arch, undefined, toolchains);
      if (!s.ok) problems.push(`matrix[${ruleIndex}].archs: ${s.problem}`);
      return s.ok;
    });
    const runner = policy.distros[rule.distro]!.runner;
    const family = familyNamed(policy.distros[rule.distro]!.family);
    const selection = selectKernels(rule, runner, entries, skipped);
    const kernels = selection.chosen.filter((e) => buildable.includes(e.kmatrix.arch));
    // Kernels that match but no mirror serves are reported as skipped; only a rule that matches
    // nothing at all is a mistake in the policy.
    if (kernels.length === 0 && selection.matched === 0) {
      problems.push(
        `matrix[${ruleIndex}]: no kernel in the kernel list matches distro ${rule.distro}, archs ${rule.archs.join('/')}, flavours ${rule.flavours.join('/')}, kernels ${rule.kernels.join(' ')}`,
      );
    }
    const reported = new Set<string>();
    for (const e of kernels) {
      const selection = selectToolchain(policy, rule.distro, e.kmatrix.arch, e.kmatrix.gcc, toolchains);
      if (!selection.ok) {
        const problem = `matrix[${ruleIndex}]: ${e.kernelrelease} (${e.kmatrix.arch}): ${selection.problem}`;
        if (!reported.has(selection.problem)) problems.push(problem);
        reported.add(selection.problem);
        continue;
      }
      if (selection.mismatch) noteMismatch(mismatches, rule.distro, e, selection.mismatch);
      const { toolchain, lock } = selection.chosen;
      const spec = toolchain.spec;
      const target: DraftTarget = {
        schemaVersion: TARGET_SCHEMA_VERSION,
        name: '',
        driver: {
          name: rule.driver,
          path: driver.path,
          modules: driver.modules,
          ...(driver.dkms ? { dkms: true } : {}),
          ...(driver.smokeTest ? { smokeTest: driver.smokeTest } : {}),
        },
        distro: rule.distro,
        kernelrelease: e.kernelrelease,
        arch: e.kmatrix.arch,
        kernel: {
          abi: e.kmatrix.abi,
          flavour: e.kmatrix.flavour,
          packageVersion: e.kmatrix.packageVersion,
          ...(e.listedAs ? { listedAs: e.listedAs } : {}),
          ...(e.kmatrix.gcc ? { gcc: e.kmatrix.gcc } : {}),
          ...imageOf(e, family),
        },
        // Host programs must run on the toolchain's machine: the x86_64 ones to cross-compile.
        headers: e.kmatrix.packages
          .filter((p) => !p.hostArch || p.hostArch === spec.hostArch)
          .sort((a, b) => a.role.localeCompare(b.role)),
        kernelDir: family.kernelDir(e.kernelrelease),
        toolchain: { name: toolchain.name, digest: lock.digest, gcc: spec.gcc },
        build: buildSettings(rule.driver, e.kmatrix.arch, spec, policy.distros[rule.distro]!.strictCompiler),
      };
      target.name = projectName(target);
      const foreign = target.headers.filter((h) => !family.roles.includes(h.role)).map((h) => h.role);
      if (foreign.length > 0) {
        problems.push(
          `matrix[${ruleIndex}]: ${target.name}: distro ${rule.distro} is of family ${family.name}, but its kernel list names header roles of another (${[...new Set(foreign)].join(', ')})`,
        );
        continue;
      }
      const noHostTools = family.missingHostTools(target.headers, spec.hostArch, target.arch);
      if (noHostTools) {
        problems.push(`matrix[${ruleIndex}]: ${target.name}: ${noHostTools}`);
        continue;
      }
      Object.assign(target.build.env, family.hostToolsEnv(target.headers, spec.hostArch, target.arch));
      const exclusion = rule.exclude.find((x) => x.kernelrelease === e.kernelrelease || x.kernelrelease === e.listedAs);
      if (exclusion) {
        excluded.push({ target: target.name, reason: exclusion.reason });
        continue;
      }
      const earlier = byName.get(target.name);
      if (earlier && earlier.rule !== ruleIndex) {
        problems.push(
          `matrix[${ruleIndex}]: target ${target.name} is also produced by matrix[${earlier.rule}]; narrow one of the two rules`,
        );
        continue;
      }
      byName.set(target.name, { target, rule: ruleIndex });
    }
  });

  warnings.push(...renderMismatches(mismatches));
  if (problems.length > 0) {
    throw new KmatrixError('the policy does not produce a valid matrix', {
      stage: 'gen',
      problems,
      remedy: 'fix support-matrix.json (or re-crawl the kernel list); nothing was written',
    });
  }
  const targets = [...byName.values()]
    .map((v) => v.target)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { targets, excluded, skipped, warnings, keptDistros: [...keptDistros].sort() };
}
