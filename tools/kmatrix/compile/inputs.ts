/**
 * The one definition of what a target's build depends on. The Nx plugin renders it as the
 * build-driver task's inputs, and `kmatrix diff` matches changed files against it, so what
 * `nx affected` rebuilds and what `kmatrix diff` reports cannot disagree.
 */
import type { Target } from '../model/target.ts';

/** Library code under a root: every file, or only files with these extensions. */
interface CodeRoot {
  dir: string;
  extensions?: readonly string[];
}

const LIBRARY: readonly CodeRoot[] = [{ dir: 'plugins/kmatrix' }, { dir: 'tools/kmatrix', extensions: ['.ts', '.sh'] }];

/**
 * Code that runs before or after builds, never inside one: the CLI, generating the matrix,
 * publishing, the fleet, and each distro family's archive/ (crawling, crawler entries, mirrors,
 * base images; a family loads it only when asked). test/unit/build-inputs.test.ts checks that
 * nothing a build imports is in here. `*` stands for one folder name.
 */
const NEVER_IN_A_TASK = [
  'tools/kmatrix/commands/',
  'tools/kmatrix/gen/',
  'tools/kmatrix/publish/',
  'tools/kmatrix/fleet/',
  'tools/kmatrix/distros/*/archive/',
  'tools/kmatrix/cli.ts',
];

/** How modules are booted and judged: an input of the boot test, never of the build. */
const BOOT_ONLY = ['tools/kmatrix/boot/', 'plugins/kmatrix/test-driver/'];

/** npm packages whose code runs in the build; any other lockfile change must not rebuild drivers. */
export const BUILD_PACKAGES = ['dockerode', 'execa', 'zod'];
/** npm packages whose code runs in the boot test. */
export const BOOT_PACKAGES = ['execa', 'zod'];

function inLibrary(path: string): boolean {
  return LIBRARY.some(
    (r) => path.startsWith(`${r.dir}/`) && (!r.extensions || r.extensions.some((e) => path.endsWith(e))),
  );
}

/** A path pattern as a regular expression: a folder (trailing "/") and everything in it, or one file. */
const patternOf = (p: string) =>
  new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]+')}${p.endsWith('/') ? '' : '$'}`);

const under = (path: string, patterns: readonly string[]) => patterns.some((p) => patternOf(p).test(path));

/** Whether a changed file (relative to the repository root) is code that every build runs. */
export function isBuildCode(path: string): boolean {
  return inLibrary(path) && !under(path, NEVER_IN_A_TASK) && !under(path, BOOT_ONLY);
}

function globsOf(excluded: readonly string[]): string[] {
  const include = LIBRARY.flatMap((r) =>
    r.extensions ? r.extensions.map((e) => `{workspaceRoot}/${r.dir}/**/*${e}`) : [`{workspaceRoot}/${r.dir}/**/*`],
  );
  const exclude = excluded.map((p) => (p.endsWith('/') ? `!{workspaceRoot}/${p}**` : `!{workspaceRoot}/${p}`));
  return [...include, ...exclude];
}

/** The library code as Nx input globs: what a build runs. */
export const BUILD_CODE_GLOBS = globsOf([...NEVER_IN_A_TASK, ...BOOT_ONLY]);
/** The library code as Nx input globs: what a boot test runs (the build's code and the boot code). */
export const BOOT_CODE_GLOBS = globsOf(NEVER_IN_A_TASK);

/** Files of the driver that are inputs of the build: its folder, minus the smoke test (it runs in the guest). */
export function driverGlobs(driver: Target['driver']): string[] {
  return [
    `{workspaceRoot}/${driver.path}/**/*`,
    ...(driver.smokeTest ? [`!{workspaceRoot}/${driver.path}/${driver.smokeTest}`] : []),
  ];
}

/**
 * Every input of a target's build-driver task: its target.json (headers by digest, flags, the
 * toolchain by digest), the driver's sources, the toolchain's definition and the build code.
 */
export function buildInputs(target: {
  driver: Target['driver'];
  toolchain: { name: string };
}): (string | { externalDependencies: string[] })[] {
  return [
    '{projectRoot}/target.json',
    ...driverGlobs(target.driver),
    `{workspaceRoot}/toolchains/${target.toolchain.name}/**/*`,
    ...BUILD_CODE_GLOBS,
    { externalDependencies: BUILD_PACKAGES },
  ];
}
