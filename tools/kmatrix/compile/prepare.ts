/**
 * Everything a build needs before it writes anything: the recipe checked against this code, the
 * header trees in the store, the kernel's compiler against the toolchain's, the image by digest.
 * Then, per build folder, the recipe's container (recipe/container.ts) — what the build runs and
 * what `kmatrix reproduce --shell` opens.
 */
import type Docker from 'dockerode';
import type { ContainerCreateOptions } from 'dockerode';
import { KmatrixError } from '../core/errors.ts';
import { ensureImage } from '../core/docker.ts';
import type { Target } from '../model/target.ts';
import type { HeaderStore } from '../packages/store.ts';
import { treeMounts } from '../packages/tree-mounts.ts';
import { kernelCompiler } from '../model/kernel-config.ts';
import { compilerDifference, gccOfToolchain, type CompilerRecord } from '../model/compiler.ts';
import { requireCurrentBuildRecipe } from '../recipe/check.ts';
import { containerOptions, imageRef, materializeMounts } from '../recipe/container.ts';
import { handToSandbox, sandboxLimits, userSpec } from '../recipe/sandbox.ts';
import { checkForeignHostTools } from './foreign-host-tools.ts';

export interface PrepareOptions {
  target: Target;
  /** The image repository the toolchain was pushed to (from its lock). */
  repository: string;
  /** Every package in the toolchain image with its version (from its lock), for the record. */
  toolchainPackages?: Record<string, string> | undefined;
  store: HeaderStore;
  docker: Docker;
  /** make -j for the build (a DKMS driver's MAKE): its share of the machine's CPUs. Default 1. */
  jobs?: number | undefined;
}

/** The container of one build folder: its Docker configuration and the copy of the driver's sources in it. */
export interface BuildContainer {
  options: ContainerCreateOptions;
  sourceDir: string;
}

/** Each header package's unpacked tree, by SHA256 (fetched and verified by the store). */
async function headerTrees(store: HeaderStore, target: Target): Promise<Map<string, string>> {
  const trees = new Map<string, string>();
  for (const pkg of target.headers) trees.set(pkg.sha256, await store.tree(pkg));
  return trees;
}

/** Where the kernel's header tree (KDIR) is on this disk: what the recipe's package mounts put at target.kernelDir. */
async function kernelTree(target: Target, trees: Map<string, string>): Promise<string> {
  for (const m of target.recipe.mounts) {
    if (m.kind !== 'package') continue;
    const found = (await treeMounts(trees.get(m.sha256)!, m)).find((t) => t.container === target.kernelDir);
    if (found) return found.host;
  }
  throw new KmatrixError(`the header packages do not contain ${target.kernelDir}`, {
    stage: 'headers',
    target: target.name,
    remedy: 'the target.json header list is inconsistent: re-run `npx kmatrix gen`',
  });
}

/**
 * The kernel's own .config says which compiler built it; a module built with another gcc may
 * still load but is a risk (plugins, flags). Another major is an error under strictCompiler, else
 * a warning; another minor release or vendor build is a warning; each is recorded in build.json.
 */
async function checkCompiler(
  target: Target,
  kernelTree: string,
  toolchainPackages: Record<string, string> | undefined,
): Promise<{ note?: string; record?: CompilerRecord }> {
  const kernel = await kernelCompiler(kernelTree);
  if (!kernel)
    return {
      note: `warning: ${target.kernelDir}/.config names no gcc (CONFIG_CC_VERSION_TEXT, CONFIG_GCC_VERSION); compiler not checked`,
    };
  const toolchain = gccOfToolchain(target.toolchain.gcc, toolchainPackages);
  const difference = compilerDifference(kernel, toolchain);
  const record = { kernel: kernel.text, toolchain: toolchain.text, difference };
  if (difference !== 'major') {
    if (difference !== 'minor' && difference !== 'vendor') return { record };
    const what = difference === 'minor' ? `gcc ${kernel.version}` : `${kernel.vendor}'s gcc ${kernel.version}`;
    return {
      record,
      note: `warning: the kernel was built with "${kernel.text}" (${what}); toolchain ${target.toolchain.name} has ${toolchain.vendor ? `${toolchain.vendor}'s ` : ''}gcc ${toolchain.version} (same major: the module builds, but code generation may differ)`,
    };
  }
  const text = `the kernel was built with "${kernel.text}" (gcc-${kernel.major}) but toolchain ${target.toolchain.name} has gcc-${target.toolchain.gcc}`;
  if (target.build.strictCompiler) {
    throw new KmatrixError(text, {
      stage: 'build',
      target: target.name,
      remedy: `add a toolchain for ${target.distro} with "gcc": "${kernel.major}", run \`npx kmatrix gen\`, or set strictCompiler to false in support-matrix.json`,
    });
  }
  return { note: `warning: ${text}`, record };
}

export async function prepareContainer(o: PrepareOptions): Promise<{
  container: (root: string, scratch: string, labels?: Record<string, string>) => Promise<BuildContainer>;
  compiler: { note?: string; record?: CompilerRecord };
}> {
  const { target } = o;
  requireCurrentBuildRecipe(target);
  const trees = await headerTrees(o.store, target);
  const compiler = await checkCompiler(target, await kernelTree(target, trees), o.toolchainPackages);
  checkForeignHostTools(target.recipe.env);
  await ensureImage(
    o.docker,
    imageRef(target.recipe, o.repository),
    `build and push it with \`npx kmatrix toolchain build ${target.toolchain.name}\`, then \`npx kmatrix gen\``,
  );
  const limits = sandboxLimits(o.jobs ?? 1);
  return {
    container: async (root, scratch, labels) => {
      const { binds, sourceDir } = await materializeMounts(target.recipe.mounts, {
        tree: async (sha256) => trees.get(sha256)!,
        root,
        scratch,
      });
      if (!sourceDir) throw new Error(`the recipe of ${target.name} mounts no sources`);
      await handToSandbox(sourceDir);
      const options = containerOptions(target.recipe, {
        repository: o.repository,
        binds,
        user: userSpec(),
        limits,
        jobs: o.jobs ?? 1,
        ...(labels ? { labels } : {}),
      });
      return { options, sourceDir };
    },
    compiler,
  };
}
