/**
 * DKMS source trees, built the way DKMS builds them. dkms.conf is a bash fragment whose answers
 * depend on the kernel (it may source the kernel's .config and add modules only under
 * `if [ -n "$CONFIG_…" ]`), so it is evaluated for each target's kernel — by bash, inside the
 * toolchain container (dkms-build.sh), with kernelver, kernel_source_dir, arch and dkms_tree set —
 * and the modules a target builds are the ones that evaluation names.
 *
 * Honoured as DKMS 3.x does: BUILT_MODULE_NAME[], BUILT_MODULE_LOCATION[], DEST_MODULE_NAME[],
 * STRIP[], MAKE[] with MAKE_MATCH[], PATCH[] with PATCH_MATCH[], PRE_BUILD, POST_BUILD,
 * BUILD_EXCLUSIVE_KERNEL/_ARCH/_CONFIG and (as upstream DKMS, newer than Debian 12's 3.0.10)
 * BUILD_EXCLUSIVE_KERNEL_MIN/_MAX; `make` runs with `-j<the build's CPU share>` and
 * KERNELRELEASE. Differences, on purpose: a PRE_BUILD/POST_BUILD script that fails fails the
 * build (DKMS 3.0 only warns), and STRIP uses the cross toolchain's strip for a cross build.
 */
import { KmatrixError } from '../core/errors.ts';
import { moduleName } from '../model/names.ts';

/** Printed by dkms-build.sh when the driver excludes this kernel; the build turns it into a skip. */
const SKIP_MARKER = 'kmatrix-dkms-skip:';
/** Each value dkms.conf evaluated to, as dkms-build.sh prints it. */
export const DKMS_VAR_MARKER = 'kmatrix-dkms-var ';
/** Where dkms-build.sh leaves the modules, inside the build's source folder. */
export const DKMS_OUT = '.kmatrix-out';

/** What one evaluation of dkms.conf said: each variable's value, arrays by index. */
export interface DkmsEvaluation {
  scalars: Map<string, string>;
  arrays: Map<string, Map<number, string>>;
}

/** Printed by dkms-build.sh once dkms.conf is evaluated and the kernel not excluded: the driver's own build follows. */
const BUILD_MARKER = 'kmatrix-dkms-build';

/**
 * The lines dkms-build.sh printed before the driver's own build began: only these are trusted
 * (a Makefile or a PRE_BUILD script could print anything afterwards).
 */
function trustedLines(lines: string[]): string[] {
  const end = lines.indexOf(BUILD_MARKER);
  return end === -1 ? lines : lines.slice(0, end);
}

/** Why dkms.conf excludes this kernel (BUILD_EXCLUSIVE_*), if it does. */
export function dkmsSkip(lines: string[]): string | undefined {
  return trustedLines(lines)
    .find((l) => l.startsWith(SKIP_MARKER))
    ?.slice(SKIP_MARKER.length)
    .trim();
}

/** The variables dkms-build.sh reports, one line each, its value in base64. */
export function readEvaluation(lines: string[]): DkmsEvaluation {
  const ev: DkmsEvaluation = { scalars: new Map(), arrays: new Map() };
  for (const line of trustedLines(lines)) {
    if (!line.startsWith(DKMS_VAR_MARKER)) continue;
    const [name, index, encoded = ''] = line.slice(DKMS_VAR_MARKER.length).split(' ');
    if (!name || !index) continue;
    const value = Buffer.from(encoded, 'base64').toString('utf8');
    if (index === '-') ev.scalars.set(name, value);
    else {
      const arr = ev.arrays.get(name) ?? new Map<number, string>();
      arr.set(Number(index), value);
      ev.arrays.set(name, arr);
    }
  }
  return ev;
}

/** A value of dkms.conf that cannot work, named with its variable and value. */
export class DkmsConfError extends KmatrixError {
  readonly variable: string;
  readonly value: string;
  constructor(variable: string, value: string, why: string, target?: string) {
    super(`dkms.conf: ${variable}=${JSON.stringify(value)} ${why}`, {
      stage: 'build',
      target,
      remedy: "fix dkms.conf (for this kernel, if it depends on the kernel's configuration); DKMS would refuse it too",
    });
    this.variable = variable;
    this.value = value;
  }
}

export interface DkmsModule {
  /** Its record's index in the module arrays */
  index: number;
  built: string;
  /** Folder in the tree the build leaves it in ('' = the top), no leading or trailing slash */
  location: string;
  /** The name it is installed (and loaded) as */
  dest: string;
}

function checkName(variable: string, value: string, target?: string): string {
  if (/\.k?o$/.test(value))
    throw new DkmsConfError(variable, value, 'ends in .o or .ko; give the module name alone', target);
  const ok = moduleName.safeParse(value);
  if (!ok.success)
    throw new DkmsConfError(variable, value, `is not a module name: ${ok.error.issues[0]?.message}`, target);
  return value;
}

function checkLocation(variable: string, value: string, target?: string): string {
  const trimmed = value.replace(/\/+$/, '');
  if (trimmed.startsWith('/') || trimmed.split('/').includes('..') || /[^A-Za-z0-9._/+-]/.test(trimmed)) {
    throw new DkmsConfError(variable, value, 'must be a folder inside the source tree (relative, no "..")', target);
  }
  return trimmed;
}

/** PACKAGE_NAME and PACKAGE_VERSION, which DKMS requires. */
export function dkmsPackage(ev: DkmsEvaluation, target?: string): { name: string; version: string } {
  const name = ev.scalars.get('PACKAGE_NAME') ?? '';
  const version = ev.scalars.get('PACKAGE_VERSION') ?? '';
  if (!name.trim()) throw new DkmsConfError('PACKAGE_NAME', name, 'is empty: DKMS requires it', target);
  if (!version.trim()) throw new DkmsConfError('PACKAGE_VERSION', version, 'is empty: DKMS requires it', target);
  return { name, version };
}

/**
 * The modules an evaluation names, as DKMS reads its arrays: one record per index up to the
 * longest of BUILT_MODULE_NAME, BUILT_MODULE_LOCATION, DEST_MODULE_NAME and DEST_MODULE_LOCATION;
 * a lone record without a name (or no record at all) is PACKAGE_NAME. `withoutKernel` (driver
 * import) passes over records that have no name when no kernel's configuration is known.
 */
export function dkmsModules(
  ev: DkmsEvaluation,
  target?: string,
  options: { withoutKernel?: boolean } = {},
): DkmsModule[] {
  const arr = (n: string) => ev.arrays.get(n) ?? new Map<number, string>();
  const records = Math.max(
    1,
    ...['BUILT_MODULE_NAME', 'BUILT_MODULE_LOCATION', 'DEST_MODULE_NAME', 'DEST_MODULE_LOCATION'].map(
      (n) => arr(n).size,
    ),
  );
  const modules: DkmsModule[] = [];
  for (let i = 0; i < records; i++) {
    let built = arr('BUILT_MODULE_NAME').get(i) ?? '';
    if (!built && records === 1) built = dkmsPackage(ev, target).name;
    // Without a kernel, a record whose name only the kernel's configuration sets is not an error yet.
    if (!built && options.withoutKernel) continue;
    checkName(`BUILT_MODULE_NAME[${i}]`, built, target);
    const location = checkLocation(`BUILT_MODULE_LOCATION[${i}]`, arr('BUILT_MODULE_LOCATION').get(i) ?? '', target);
    const dest = arr('DEST_MODULE_NAME').get(i) || built;
    checkName(`DEST_MODULE_NAME[${i}]`, dest, target);
    if (modules.some((m) => m.dest === dest))
      throw new DkmsConfError(
        `DEST_MODULE_NAME[${i}]`,
        dest,
        'names a module an earlier record already installs',
        target,
      );
    modules.push({ index: i, built, location, dest });
  }
  return modules;
}
