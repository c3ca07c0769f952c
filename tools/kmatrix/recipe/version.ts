/**
 * The version of what a recipe means. Every build-driver and test-driver task has this file as an
 * input, and nothing else of kmatrix's code: a task's key is its rendered recipe (target.json), the
 * driver's files and this number. Bump it by hand when the same recipe would now run differently:
 * how a recipe is turned into a container or a guest (recipe/container.ts, recipe/guest.ts), what a
 * build does around its container (checks, the files it writes into its output, build.json), or
 * which inputs the Nx plugin declares (compile/inputs.ts). test/unit/recipe.test.ts holds the
 * golden tables that fail when those change while this number stays the same.
 */
export const RECIPE_VERSION = 1;

/** This file, as the plugin declares it and `kmatrix diff` matches changed paths against it. */
export const RECIPE_VERSION_FILE = 'tools/kmatrix/recipe/version.ts';
