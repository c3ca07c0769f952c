/**
 * The one definition of what a target's tasks depend on. The Nx plugin declares it as the
 * build-driver and test-driver inputs, and `kmatrix diff` matches changed files against it, so
 * what `nx affected` rebuilds and what `kmatrix diff` reports cannot disagree.
 *
 * A task's key is what runs, not the code that runs it: target.json (its spec and the recipes
 * rendered from it), the driver's files and RECIPE_VERSION. kmatrix's own source is not an input:
 * a refactor, a log line or a comment rebuilds nothing, and a change that would make the code
 * render another recipe shows up as a target.json change (`kmatrix gen` writes it; `gen --check`
 * and the build itself refuse a stale one). Changing this list means bumping RECIPE_VERSION.
 */
import type { TargetSpec } from '../model/target.ts';
import { RECIPE_VERSION_FILE } from '../recipe/version.ts';

/** An Nx task input: a file pattern or one of Nx's input objects. */
export type TaskInput =
  | string
  | { externalDependencies: string[] }
  | { dependentTasksOutputFiles: string; transitive: boolean }
  | { runtime: string };

const RECIPE_VERSION_INPUT = `{workspaceRoot}/${RECIPE_VERSION_FILE}`;

/**
 * npm packages: what runs is the recipe, so no package's version belongs in a key — but Nx hashes
 * every package of the lockfile for a task that names none (its hash planner falls back to "all
 * external dependencies"), so each task names the one package that hands its recipe over: the
 * Docker client for a build, the process runner for a boot test.
 */
const BUILD_PACKAGES = { externalDependencies: ['dockerode'] };
const BOOT_PACKAGES = { externalDependencies: ['execa'] };

/** Whether a changed file (relative to the repository root) changes how every recipe runs: RECIPE_VERSION. */
export function isBuildCode(path: string): boolean {
  return path === RECIPE_VERSION_FILE;
}

/** Files of the driver that are inputs of the build: its folder, minus the smoke test (it runs in the guest). */
export function driverGlobs(driver: TargetSpec['driver']): string[] {
  return [
    `{workspaceRoot}/${driver.path}/**/*`,
    ...(driver.smokeTest ? [`!{workspaceRoot}/${driver.path}/${driver.smokeTest}`] : []),
  ];
}

/**
 * The inputs every build-driver task shares, and every test-driver task: Nx named inputs, so a
 * workspace can add to them in nx.json (`namedInputs.kmatrixBuild`) and `targetDefaults` can
 * override a target's inputs as a whole. When nx.json does not define them, the plugin declares
 * these contents in their place (as @nx/jest does with "production").
 */
export const SHARED_INPUTS = {
  kmatrixBuild: [RECIPE_VERSION_INPUT, BUILD_PACKAGES],
  kmatrixBoot: [RECIPE_VERSION_INPUT],
} satisfies Record<string, TaskInput[]>;
export type SharedInputName = keyof typeof SHARED_INPUTS;

/** The shared part: the named input when the workspace defines it, else its contents. */
function shared(name: SharedInputName, namedInputs: readonly string[]): TaskInput[] {
  return namedInputs.includes(name) ? [name] : SHARED_INPUTS[name];
}

/** Every input of a target's build-driver task: target.json (its build recipe), the driver's sources, RECIPE_VERSION. */
export function buildInputs(
  target: { driver: TargetSpec['driver'] },
  namedInputs: readonly string[] = [],
): TaskInput[] {
  return ['{projectRoot}/target.json', ...driverGlobs(target.driver), ...shared('kmatrixBuild', namedInputs)];
}

/**
 * Every input of a target's test-driver task: target.json (its boot recipe: kernel image, busybox,
 * /init and QEMU's arguments), the smoke test, the built .ko files themselves (whatever produced
 * them: a build or a cache hit), RECIPE_VERSION and the installed QEMU's version.
 */
export function bootInputs(
  target: { driver: TargetSpec['driver'] },
  qemuBinary: string,
  namedInputs: readonly string[] = [],
): TaskInput[] {
  const { driver } = target;
  return [
    '{projectRoot}/target.json',
    ...(driver.smokeTest ? [`{workspaceRoot}/${driver.path}/${driver.smokeTest}`] : []),
    ...shared('kmatrixBoot', namedInputs),
    { dependentTasksOutputFiles: '**/*.ko', transitive: false },
    // Without QEMU the hash still computes; the task then fails saying what to install.
    { runtime: `${qemuBinary} --version 2>/dev/null | head -n 1 || echo no-${qemuBinary}` },
    BOOT_PACKAGES,
  ];
}
