/**
 * support-matrix.json: the reviewed policy of what we support. Everything `gen` produces follows
 * from this file and a kernel list, so it is validated strictly (typos fail) before anything is written.
 */
import { z } from 'zod';
import { readJsonFile } from '../core/json-file.ts';
import { ROOT_MARKER } from '../core/workspace-root.ts';
import { arch, identifier, kernelRelease, moduleName, repoPath } from './names.ts';

const driver = z
  .object({
    path: repoPath.describe('Folder with the Kbuild/Makefile, relative to the repository root'),
    modules: z
      .array(moduleName)
      .min(1)
      .optional()
      .describe(
        'Module names the build must produce, without .ko; optional for a DKMS driver, whose dkms.conf names them for each kernel (if given, each build checks it against that)',
      ),
    dkms: z
      .boolean()
      .optional()
      .describe(
        'The folder is a DKMS source tree: build it as DKMS would, from its dkms.conf (kmatrix driver import sets this)',
      ),
    smokeTest: repoPath
      .optional()
      .describe(
        'Script, relative to the driver folder, that test-driver runs with busybox sh inside the booted kernel once the modules are loaded (exit 0 = the driver works)',
      ),
  })
  .strict();

/** A string field that must be present, saying what to write when it is not (zod's own "expected string" helps nobody). */
const requiredName = (what: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `is required: ${what}` : undefined) })
    .regex(
      /^[a-z0-9][a-z0-9._-]{0,62}$/,
      'must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
    );

const MIGRATE = '(`npx kmatrix policy migrate` adds it to a policy written before it existed)';

const distro = z
  .object({
    family: requiredName(
      `the distro family whose archive, packages and layout this distro uses, e.g. "deb" or "rpm" ${MIGRATE}`,
    ).describe(
      'The distro family (a folder under tools/kmatrix/distros/): how its archive is crawled, its header packages mounted and its toolchains based',
    ),
    distro: identifier
      .optional()
      .describe(
        'The os-release ID, for a family that serves several distros: "fedora", "almalinux", "rocky", "centos", "ol" or "amazonlinux" for family "rpm"; "debian" (the default) or "ubuntu" for family "deb"',
      ),
    release: requiredName(`the family's name for the release, e.g. "bookworm" ${MIGRATE}`).describe(
      'The release, as the distro names it: "bookworm", "41", "9", "2023"',
    ),
    toolchain: identifier.describe(
      "Default toolchain (folder under toolchains/) for this distro; when its gcc major is not the kernel's, a toolchain with that gcc is chosen instead (this distro's first, then any)",
    ),
    runner: arch
      .default('x86_64')
      .describe('Architecture of the build machines: x86_64 cross-compiles aarch64; aarch64 builds it natively'),
    strictCompiler: z
      .boolean()
      .default(false)
      .describe('Fail (instead of warn) when no toolchain has the gcc major the kernel was built with'),
  })
  .strict();

/** An upstream version bound such as "6.1" or "6.12.57"; compared with the kernel ABI (6.12.57+deb12). */
const versionBound = z.string().regex(/^\d+(\.\d+){0,2}$/, 'must be a version like "6.1" or "6.12.57"');

/** A shell-style glob over kernel releases: only `*` and `?` are special. */
const releasePattern = z
  .string()
  .regex(/^[A-Za-z0-9.+~_*?-]+$/, 'must be a kernel release glob: letters, digits, ".", "+", "~", "_", "-", "*", "?"');

const exclusion = z
  .object({
    kernelrelease: kernelRelease,
    reason: z.string().min(1, 'say why the kernel is excluded'),
  })
  .strict();

const rule = z
  .object({
    driver: identifier,
    distro: identifier,
    archs: z.array(arch).min(1),
    flavours: z.array(identifier).min(1).describe('Kernel flavours, e.g. amd64, cloud-amd64, rt-amd64'),
    kernels: z.array(releasePattern).min(1).describe('Kernel ABI globs, e.g. "6.1.0-*", "6.12.*"'),
    versions: z
      .object({
        from: versionBound.optional().describe('Oldest kernel version included'),
        below: versionBound.optional().describe('First kernel version no longer included'),
      })
      .strict()
      .optional()
      .describe('Kernel version range, e.g. { "from": "6.1", "below": "6.13" }'),
    latest: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Keep only the newest N kernel ABIs (per arch) that match each pattern and that the mirror serves'),
    exclude: z.array(exclusion).default([]),
  })
  .strict();

export const policySchema = z
  .object({
    $schema: z.string().optional(),
    drivers: z.record(identifier, driver),
    distros: z.record(identifier, distro),
    matrix: z.array(rule).min(1),
  })
  .strict();

export type Policy = z.infer<typeof policySchema>;
export type MatrixRule = Policy['matrix'][number];

/** The policy file; its presence is what marks a workspace's root (core/workspace-root.ts). */
export const POLICY_FILE = ROOT_MARKER;

/** A distro family as the policy sees it: its name, the distros (os-release IDs) it serves, and which one is implied. */
export interface FamilyNames {
  name: string;
  distros: readonly string[];
  defaultDistro?: string;
}

/** The distro a policy entry of `family` means when it names none: the family's default, or its only one. */
export function impliedDistro(family: FamilyNames): string | undefined {
  return family.defaultDistro ?? (family.distros.length === 1 ? family.distros[0] : undefined);
}

/**
 * Named rules across fields. They run on the raw JSON (defensively) rather than as a zod refinement,
 * because zod skips refinements once any field is invalid, and a user should see every problem at once.
 */
export function crossFieldProblems(
  raw: unknown,
  families: readonly FamilyNames[],
): { path: (string | number)[]; message: string }[] {
  const names = families.map((f) => f.name);
  const out: { path: (string | number)[]; message: string }[] = [];
  const obj = (v: unknown): Record<string, unknown> | undefined =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const policy = obj(raw);
  const drivers = obj(policy?.drivers) ?? {};
  const distros = obj(policy?.distros) ?? {};
  const rules = Array.isArray(policy?.matrix) ? policy.matrix : [];
  for (const [name, d] of Object.entries(drivers)) {
    const driver = obj(d);
    if (driver && driver.modules === undefined && driver.dkms !== true) {
      out.push({
        path: ['drivers', name, 'modules'],
        message:
          'is required (only a DKMS driver, "dkms": true, may leave it to its dkms.conf). List the module names the build produces, without .ko',
      });
    }
  }
  const releases = new Map<string, string>();
  for (const [name, d] of Object.entries(distros)) {
    const { family, release, distro } = obj(d) ?? {};
    if (typeof family === 'string' && /^[a-z0-9]/.test(family) && !names.includes(family)) {
      out.push({
        path: ['distros', name, 'family'],
        message:
          family === 'debian'
            ? 'family "debian" is now "deb" (it serves Debian and Ubuntu): `npx kmatrix policy migrate` renames it'
            : `unknown distro family "${family}" (known: ${names.join(', ')})`,
      });
    }
    const known = families.find((f) => f.name === family);
    if (known && typeof distro === 'string' && !known.distros.includes(distro)) {
      out.push({
        path: ['distros', name, 'distro'],
        message: `family ${known.name} does not serve "${distro}" (it serves: ${known.distros.join(', ')})`,
      });
    } else if (known && distro === undefined && !impliedDistro(known)) {
      out.push({
        path: ['distros', name, 'distro'],
        message: `is required: family ${known.name} serves several distros; add "distro": one of ${known.distros.map((d) => `"${d}"`).join(', ')}`,
      });
    }
    // Kernels are filed under the distro of their family, os and release: two distros cannot share one.
    if (typeof family !== 'string' || typeof release !== 'string') continue;
    const os = typeof distro === 'string' ? distro : known && impliedDistro(known);
    const what = [family, os, release].filter(Boolean).join(' ');
    const other = releases.get(what);
    if (other) {
      out.push({
        path: ['distros', name, 'release'],
        message: `distro "${other}" is already ${what}; one policy distro per family, distro and release`,
      });
    } else releases.set(what, name);
  }
  rules.forEach((r: unknown, i: number) => {
    const rule = obj(r);
    if (typeof rule?.driver === 'string' && !(rule.driver in drivers)) {
      out.push({
        path: ['matrix', i, 'driver'],
        message: `unknown driver "${rule.driver}". Declare it under "drivers" (known: ${Object.keys(drivers).join(', ') || 'none'})`,
      });
    }
    if (typeof rule?.distro === 'string' && !(rule.distro in distros)) {
      out.push({
        path: ['matrix', i, 'distro'],
        message: `unknown distro "${rule.distro}". Declare it under "distros" (known: ${Object.keys(distros).join(', ') || 'none'})`,
      });
    }
  });
  return out;
}

/** The whole policy schema: fields, then the named cross-field rules, given the distro families kmatrix has. */
export const validPolicy = (families: readonly FamilyNames[]) =>
  z.unknown().transform((raw, ctx) => {
    const parsed = policySchema.safeParse(raw);
    if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue } as z.core.$ZodRawIssue);
    const problems = crossFieldProblems(raw, families);
    for (const p of problems) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
    if (!parsed.success || problems.length > 0) return z.NEVER;
    // Every distro names its os-release ID from here on: the one it says, or the one its family implies.
    for (const d of Object.values(parsed.data.distros)) {
      const family = families.find((f) => f.name === d.family);
      if (d.distro === undefined && family) d.distro = impliedDistro(family);
    }
    return parsed.data;
  });

export async function loadPolicy(file: string, families: readonly FamilyNames[]): Promise<Policy> {
  return readJsonFile(validPolicy(families), file, {
    stage: 'policy',
    what: 'support-matrix policy',
    remedy: `fix the fields listed above in ${file}; nothing was written`,
  });
}

/**
 * The policy distro a family's release belongs to (distros name each family × release once), or
 * "<family>-<release>" for one the policy does not name (its kernels are reported, never built).
 */
/** The policy distro a family's release (of os-release ID `os`, for families that serve several) belongs to. */
export type DistroOf = (family: string, release: string, os?: string) => string;

export function distroOfPolicy(policy: Policy): DistroOf {
  return (family, release, os) =>
    Object.entries(policy.distros).find(
      ([, d]) => d.family === family && d.release === release && (!os || !d.distro || d.distro === os),
    )?.[0] ?? `${os ?? family}-${release}`;
}

/** Glob match for kernel releases (`*` any run, `?` one character); the whole string must match. */
export function matchesRelease(pattern: string, release: string): boolean {
  // Greedy matching with one backtrack point (the last `*`): at most pattern × release steps, never
  // the exponential backtracking a regex of many `.*` takes on a near miss ("*" × 20 then "Z").
  let p = 0;
  let r = 0;
  let star = -1;
  let resume = 0;
  while (r < release.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === release[r])) {
      p++;
      r++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = r;
    } else if (star >= 0) {
      p = star + 1;
      r = ++resume;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
