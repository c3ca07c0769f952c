/**
 * Policy × kernel list → the set of targets, computed purely (no Docker, no network), so every
 * problem is found before a single file is written.
 */
import { KmatrixError } from '../errors.ts';
import { resolvedEntry, type KernelList, type ResolvedEntry } from '../kernels/schema.ts';
import { compareVersions } from '../kernels/version.ts';
import { kbuildArch } from './names.ts';
import { matchesRelease, type MatrixRule, type Policy } from './policy.ts';
import { projectName, TARGET_SCHEMA_VERSION, type Target } from './target.ts';
import type { Toolchain, ToolchainLock } from '../toolchain/spec.ts';

/** Fixed so two builds of one target are byte-identical (see shared/design.md). */
export const BUILD_TIMESTAMP = '1970-01-01 00:00:00 UTC';
/** Where the driver's sources are mounted in the build container, and what debug info calls them. */
export const CONTAINER_SRC = '/build/src';

export interface Skipped {
  kernelrelease: string;
  why: string;
}

export interface Plan {
  targets: Target[];
  excluded: { target: string; reason: string }[];
  skipped: Skipped[];
}

export function buildSettings(driver: string, arch: Target['arch']): Target['build'] {
  return {
    makeArgs: [`ARCH=${kbuildArch[arch]}`],
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

/** Entries usable for a distro: crawler entries without header digests are reported, not guessed. */
export function resolvedEntries(list: KernelList, skipped: Skipped[]): ResolvedEntry[] {
  const out: ResolvedEntry[] = [];
  for (const entries of Object.values(list)) {
    for (const entry of entries) {
      const r = resolvedEntry.safeParse(entry);
      if (r.success) out.push(r.data);
      else skipped.push({ kernelrelease: entry.kernelrelease, why: 'no header package digests (not produced by `kmatrix crawl`)' });
    }
  }
  return out;
}

function selectKernels(rule: MatrixRule, entries: ResolvedEntry[]): ResolvedEntry[] {
  const chosen = new Set<ResolvedEntry>();
  for (const pattern of rule.kernels) {
    const matching = entries.filter(
      (e) =>
        e.kmatrix.distro === rule.distro &&
        rule.archs.includes(e.kmatrix.arch) &&
        rule.flavours.includes(e.kmatrix.flavour) &&
        matchesRelease(pattern, e.kmatrix.abi),
    );
    const abis = [...new Set(matching.map((e) => e.kmatrix.abi))].sort(compareVersions).reverse();
    const keep = new Set(rule.latest ? abis.slice(0, rule.latest) : abis);
    for (const e of matching) if (keep.has(e.kmatrix.abi)) chosen.add(e);
  }
  return [...chosen];
}

export function planTargets(
  policy: Policy,
  list: KernelList,
  toolchains: Map<string, { toolchain: Toolchain; lock: ToolchainLock }>,
): Plan {
  const skipped: Skipped[] = [];
  const entries = resolvedEntries(list, skipped);
  const byName = new Map<string, { target: Target; rule: number }>();
  const excluded: Plan['excluded'] = [];
  const problems: string[] = [];

  policy.matrix.forEach((rule, ruleIndex) => {
    const driver = policy.drivers[rule.driver]!;
    const tcName = policy.distros[rule.distro]!.toolchain;
    const tc = toolchains.get(tcName);
    if (!tc) {
      problems.push(`matrix[${ruleIndex}]: toolchain "${tcName}" of distro ${rule.distro} is not loaded`);
      return;
    }
    for (const arch of rule.archs) {
      if (!tc.toolchain.spec.targetArchs.includes(arch)) {
        problems.push(`matrix[${ruleIndex}].archs: toolchain "${tcName}" does not build for ${arch} (it builds ${tc.toolchain.spec.targetArchs.join(', ')})`);
      }
    }
    const kernels = selectKernels(rule, entries);
    if (kernels.length === 0) {
      problems.push(`matrix[${ruleIndex}]: no kernel in the kernel list matches distro ${rule.distro}, archs ${rule.archs.join('/')}, flavours ${rule.flavours.join('/')}, kernels ${rule.kernels.join(' ')}`);
    }
    for (const e of kernels) {
      const target: Target = {
        schemaVersion: TARGET_SCHEMA_VERSION,
        name: '',
        driver: { name: rule.driver, path: driver.path, modules: driver.modules },
        distro: rule.distro,
        kernelrelease: e.kernelrelease,
        arch: e.kmatrix.arch,
        kernel: { abi: e.kmatrix.abi, flavour: e.kmatrix.flavour, packageVersion: e.kmatrix.packageVersion },
        headers: [...e.kmatrix.packages].sort((a, b) => a.role.localeCompare(b.role)),
        kernelDir: `/usr/src/linux-headers-${e.kernelrelease}`,
        toolchain: { name: tcName, digest: tc.lock.digest },
        build: buildSettings(rule.driver, e.kmatrix.arch),
      };
      target.name = projectName(target);
      const exclusion = rule.exclude.find((x) => x.kernelrelease === e.kernelrelease);
      if (exclusion) {
        excluded.push({ target: target.name, reason: exclusion.reason });
        continue;
      }
      const earlier = byName.get(target.name);
      if (earlier && earlier.rule !== ruleIndex) {
        problems.push(`matrix[${ruleIndex}]: target ${target.name} is also produced by matrix[${earlier.rule}]; narrow one of the two rules`);
        continue;
      }
      byName.set(target.name, { target, rule: ruleIndex });
    }
  });

  if (problems.length > 0) {
    throw new KmatrixError('the policy does not produce a valid matrix', {
      stage: 'gen',
      problems,
      remedy: 'fix support-matrix.json (or re-crawl the kernel list); nothing was written',
    });
  }
  const targets = [...byName.values()].map((v) => v.target).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { targets, excluded, skipped };
}
