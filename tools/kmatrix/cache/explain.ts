/**
 * Why a target will miss the cache: its inputs now against those recorded in build.json by the
 * last cached build of it, input by input — which header package, which toolchain image, which
 * field of the build recipe (by its path in target.json, e.g. `recipe.argv[5]`), which driver
 * source file.
 */
import { fieldDifferences, renderDifference } from '../recipe/check.ts';
import { sourceDigests } from '../recipe/container.ts';
import { RECIPE_VERSION } from '../recipe/version.ts';
import type { BuildRecipe } from '../model/recipe.ts';
import type { Target } from '../model/target.ts';
import type { BuildRecord } from '../model/build-record.ts';
import { packageChanges } from '../model/toolchain.ts';

export interface Difference {
  input: 'headers' | 'toolchain' | 'recipe' | 'flags' | 'source';
  detail: string;
}

export async function currentInputs(
  root: string,
  target: Target,
  lock: { repository: string; packages?: Record<string, string> | undefined },
): Promise<BuildRecord['inputs']> {
  return {
    targetJsonSha256: '',
    toolchain: {
      name: target.toolchain.name,
      image: `${lock.repository}@${target.toolchain.digest}`,
      ...(lock.packages ? { packages: lock.packages } : {}),
    },
    headers: target.headers.map((h) => ({ name: h.name, version: h.version, sha256: h.sha256 })),
    driverSources: await sourceDigests(root, target.recipe),
    make: target.recipe.argv,
    env: target.recipe.env,
    recipe: target.recipe,
    recipeVersion: RECIPE_VERSION,
  };
}

export function compareInputs(then: BuildRecord['inputs'], now: BuildRecord['inputs']): Difference[] {
  const out: Difference[] = [];
  const old = new Map(then.headers.map((h) => [h.name, h]));
  for (const h of now.headers) {
    const o = old.get(h.name);
    old.delete(h.name);
    if (!o) out.push({ input: 'headers', detail: `new package ${h.name} ${h.version}` });
    else if (o.version !== h.version) out.push({ input: 'headers', detail: `${h.name}: ${o.version} → ${h.version}` });
    else if (o.sha256 !== h.sha256)
      out.push({
        input: 'headers',
        detail: `${h.name} ${h.version}: sha256 ${o.sha256.slice(0, 12)}… → ${h.sha256.slice(0, 12)}…`,
      });
  }
  for (const o of old.values()) out.push({ input: 'headers', detail: `package ${o.name} ${o.version} no longer used` });
  const digest = (image: string) => image.replace(/^.*@/, '');
  if (then.toolchain.name !== now.toolchain.name)
    out.push({ input: 'toolchain', detail: `${then.toolchain.name} → ${now.toolchain.name}` });
  else if (digest(then.toolchain.image) !== digest(now.toolchain.image)) {
    out.push({ input: 'toolchain', detail: `image ${digest(then.toolchain.image)} → ${digest(now.toolchain.image)}` });
    // Which packages made the new image, when both sides know theirs.
    if (then.toolchain.packages && now.toolchain.packages)
      for (const change of packageChanges(then.toolchain.packages, now.toolchain.packages))
        out.push({ input: 'toolchain', detail: `package ${change}` });
  }
  if (then.recipe && now.recipe) out.push(...recipeChanges(then, now));
  else out.push(...flagChanges(then, now));
  for (const f of new Set([...Object.keys(then.driverSources), ...Object.keys(now.driverSources)])) {
    const [x, y] = [then.driverSources[f], now.driverSources[f]];
    if (x === y) continue;
    out.push({ input: 'source', detail: !x ? `${f} added` : !y ? `${f} removed` : `${f} changed` });
  }
  return out;
}

/** The image and the header packages are named above, by name and version: the recipe's own fields are compared without their digests. */
const withoutDigests = (r: BuildRecipe) => ({
  ...r,
  image: undefined,
  mounts: r.mounts.map((m) => (m.kind === 'package' ? { ...m, sha256: undefined } : m)),
});

/** Each field of the recipe that differs, named by its path in target.json, and the recipe version. */
function recipeChanges(then: BuildRecord['inputs'], now: BuildRecord['inputs']): Difference[] {
  const out: Difference[] = fieldDifferences(withoutDigests(then.recipe!), withoutDigests(now.recipe!), 'recipe').map(
    (d) => ({ input: 'recipe', detail: renderDifference(d) }),
  );
  if (then.recipeVersion !== now.recipeVersion)
    out.push({ input: 'recipe', detail: `RECIPE_VERSION: ${then.recipeVersion ?? '(none)'} → ${now.recipeVersion}` });
  return out;
}

/** A record from before recipes: its make command and environment. */
function flagChanges(then: BuildRecord['inputs'], now: BuildRecord['inputs']): Difference[] {
  const out: Difference[] = [];
  const [a, b] = [then.make, now.make];
  for (const arg of b) if (!a.includes(arg)) out.push({ input: 'flags', detail: `make argument added: ${arg}` });
  for (const arg of a) if (!b.includes(arg)) out.push({ input: 'flags', detail: `make argument removed: ${arg}` });
  for (const k of new Set([...Object.keys(then.env), ...Object.keys(now.env)])) {
    if (then.env[k] !== now.env[k])
      out.push({
        input: 'flags',
        detail: `environment ${k}: ${then.env[k] ?? '(unset)'} → ${now.env[k] ?? '(unset)'}`,
      });
  }
  return out;
}
