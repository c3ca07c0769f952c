/**
 * Builds one target: header packages from the store, the driver's sources copied into a scratch
 * folder, `make modules` in the toolchain container (by digest, network none), then the .ko files
 * and build.json moved into the output folder in one rename. Shared by the Nx executor and the CLI.
 */
import type Docker from 'dockerode';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { KmatrixError } from '../errors.ts';
import { stableJson } from '../files/atomic.ts';
import { CONTAINER_SRC } from '../matrix/generate.ts';
import type { Target } from '../matrix/target.ts';
import { ensureImage } from '../docker/engine.ts';
import type { HeaderStore } from '../headers/store.ts';
import { runInContainer, type Bind } from './container.ts';
import { modinfoField } from './modinfo.ts';
import { hashTree, sha256 } from './sources.ts';
import { elfArch, kernelCompiler } from './kernel-config.ts';
import { dkmsCommand, SKIP_MARKER } from './dkms.ts';

export interface BuildOptions {
  root: string;
  target: Target;
  /** The image repository the toolchain was pushed to (from its lock). */
  repository: string;
  outDir: string;
  store: HeaderStore;
  docker: Docker;
  log: (line: string) => void;
  timeoutMs?: number;
}

export interface BuiltModule {
  file: string;
  sha256: string;
  size: number;
  vermagic: string;
}

export interface BuildResult {
  modules: BuiltModule[];
  logFile: string;
  /** Why the driver does not build for this kernel (DKMS BUILD_EXCLUSIVE_*), when it does not. */
  skipped?: string;
}

/** Each package's trees go where Debian's absolute-path Makefiles expect them: /usr/src/*, /usr/lib/linux-kbuild-*. */
async function headerBinds(store: HeaderStore, target: Target): Promise<Bind[]> {
  const binds: Bind[] = [];
  for (const pkg of target.headers) {
    const tree = await store.tree(pkg);
    for (const sub of ['usr/src', 'usr/lib']) {
      const dir = join(tree, sub);
      if (!existsSync(dir)) continue;
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        if (sub === 'usr/lib' && !entry.name.startsWith('linux-kbuild-')) continue;
        binds.push({ host: join(dir, entry.name), container: `/${sub}/${entry.name}`, readOnly: true });
      }
    }
  }
  if (!binds.some((b) => b.container === target.kernelDir)) {
    throw new KmatrixError(`the header packages do not contain ${target.kernelDir}`, {
      stage: 'headers',
      target: target.name,
      remedy: 'the target.json header list is inconsistent: re-run `npx kmatrix gen`',
    });
  }
  return binds;
}

/**
 * The kernel's own .config says which compiler built it; a module built with another gcc major
 * may still load but is a risk (plugins, flags). A warning in the log, or an error when strict.
 */
async function checkCompiler(target: Target, kernelTree: string): Promise<string | undefined> {
  const kernel = await kernelCompiler(kernelTree);
  if (!kernel) return `warning: ${target.kernelDir}/.config names no gcc (CONFIG_CC_VERSION_TEXT, CONFIG_GCC_VERSION); compiler not checked`;
  if (kernel.major === target.toolchain.gcc) return undefined;
  const text = `the kernel was built with "${kernel.text}" (gcc-${kernel.major}) but toolchain ${target.toolchain.name} has gcc-${target.toolchain.gcc}`;
  if (target.build.strictCompiler) {
    throw new KmatrixError(text, {
      stage: 'build',
      target: target.name,
      remedy: `add a toolchain for ${target.distro} with "gcc": "${kernel.major}", run \`npx kmatrix gen\`, or set strictCompiler to false in support-matrix.json`,
    });
  }
  return `warning: ${text}`;
}

async function findKo(dir: string, module: string): Promise<string | undefined> {
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === `${module}.ko`) return join(e.parentPath, e.name);
  }
  return undefined;
}

function firstErrors(lines: string[]): string[] {
  const errors = lines.filter((l) => /\berror\b|Error \d+|\*\*\*/.test(l));
  return (errors.length > 0 ? errors : lines.slice(-5)).slice(0, 5);
}

/** The exact command a build runs (also what `kmatrix cache explain` compares). */
export function makeCommand(target: Target): string[] {
  if (target.driver.dkms) return dkmsCommand(target.kernelrelease, target.kernelDir, target.arch);
  return ['make', '-C', target.kernelDir, `M=${CONTAINER_SRC}`, ...target.build.makeArgs, `KCFLAGS=${target.build.kcflags.join(' ')}`, 'modules'];
}

/** Everything about the build container except the command: the image by digest, the header
 * trees and the driver's sources mounted where the build expects them, the environment, the user.
 * `kmatrix reproduce --shell` opens exactly this container. */
export interface BuildContainer {
  image: string;
  env: Record<string, string>;
  workdir: string;
  binds: Bind[];
  user: string;
}

/** Header trees in the store and the image by digest: everything a build needs before it writes anything. */
export async function prepareContainer(o: Pick<BuildOptions, 'target' | 'repository' | 'store' | 'docker'>): Promise<{ container: (src: string) => BuildContainer; compilerNote?: string }> {
  const { target } = o;
  const image = `${o.repository}@${target.toolchain.digest}`;
  const binds = await headerBinds(o.store, target);
  const kernelTree = binds.find((b) => b.container === target.kernelDir)!.host;
  const compilerNote = await checkCompiler(target, kernelTree);
  await ensureImage(o.docker, image, `build and push it with \`npx kmatrix toolchain build ${target.toolchain.name}\`, then \`npx kmatrix gen\``);
  // DKMS trees run their own make command: kbuild takes ARCH, CROSS_COMPILE and KCFLAGS from the
  // environment, and many dkms.conf files look for the kernel at /lib/modules/<release>/build.
  const dkmsEnv = target.driver.dkms
    ? { ...Object.fromEntries(target.build.makeArgs.map((a) => a.split('=') as [string, string])), KCFLAGS: target.build.kcflags.join(' ') }
    : {};
  const dkmsBinds = target.driver.dkms ? [{ host: kernelTree, container: `/lib/modules/${target.kernelrelease}/build`, readOnly: true }] : [];
  return {
    container: (src) => ({
      image,
      env: { ...target.build.env, ...dkmsEnv },
      workdir: CONTAINER_SRC,
      binds: [...binds, ...dkmsBinds, { host: src, container: CONTAINER_SRC, readOnly: false }],
      user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
    }),
    compilerNote,
  };
}

export async function buildTarget(o: BuildOptions): Promise<BuildResult> {
  const { target } = o;
  // Headers and image first: a download or Docker problem leaves no folder behind.
  const prepared = await prepareContainer(o);
  await mkdir(dirname(o.outDir), { recursive: true });
  // A build killed outright (Ctrl-C on nx ends the executor before its finally) leaves its
  // scratch folder: the next build of the same target clears it.
  for (const f of await readdir(dirname(o.outDir))) {
    if (f.startsWith(`.${basename(o.outDir)}.work-`)) await rm(join(dirname(o.outDir), f), { recursive: true, force: true });
  }
  const scratch = await mkdtemp(join(dirname(o.outDir), `.${basename(o.outDir)}.work-`));
  const logFile = join(dirname(o.outDir), `${basename(o.outDir)}.build.log`);
  const lines: string[] = [];
  try {
    const src = join(scratch, 'src');
    await cp(join(o.root, target.driver.path), src, { recursive: true });
    const sources = await hashTree(src);
    const { compilerNote } = prepared;
    const container = prepared.container(src);
    const image = container.image;
    const cmd = makeCommand(target);
    if (compilerNote) {
      lines.push(compilerNote);
      o.log(compilerNote);
    }
    // The DKMS script is long; the log names it (its text is in build.json's provenance).
    const shown = target.driver.dkms ? ['tools/kmatrix/build/dkms-build.sh', ...cmd.slice(4)] : cmd;
    o.log(`$ ${shown.join(' ')}   [${image}]`);
    const result = await runInContainer(o.docker, {
      ...container,
      cmd,
      labels: { 'kmatrix.target': target.name, 'kmatrix.out': o.outDir },
      timeoutMs: o.timeoutMs,
      onLine: (line) => {
        lines.push(line);
        o.log(line);
      },
    });
    await writeFile(logFile, `${lines.join('\n')}\n`);
    if (result.exitCode !== 0) {
      throw new KmatrixError(
        result.timedOut ? `build timed out after ${o.timeoutMs} ms` : `make exited with status ${result.exitCode}`,
        { stage: 'build', target: target.name, problems: firstErrors(lines), remedy: `full log: ${logFile}` },
      );
    }

    const stage = join(scratch, 'out');
    await mkdir(stage);
    const modules: BuiltModule[] = [];
    // A DKMS driver that excludes this kernel (BUILD_EXCLUSIVE_*): a skip with its reason, no module.
    const skipped = lines.find((l) => l.startsWith(SKIP_MARKER))?.slice(SKIP_MARKER.length).trim();
    for (const module of skipped ? [] : target.driver.modules) {
      const ko = await findKo(src, module);
      if (!ko) {
        throw new KmatrixError(`make succeeded but produced no ${module}.ko`, {
          stage: 'build',
          target: target.name,
          remedy: `check the driver's Kbuild (obj-m) against "modules" in support-matrix.json; log: ${logFile}`,
        });
      }
      const bytes = await readFile(ko);
      const vermagic = modinfoField(bytes, 'vermagic') ?? '';
      if (!vermagic.startsWith(`${target.kernelrelease} `)) {
        throw new KmatrixError(`${module}.ko has vermagic "${vermagic}", not ${target.kernelrelease}`, {
          stage: 'build',
          target: target.name,
          remedy: 'the headers mounted are not the target kernel\'s: re-run `npx kmatrix gen`',
        });
      }
      const built = elfArch(bytes);
      if (built !== target.arch) {
        throw new KmatrixError(`${module}.ko is an ELF object for ${built ?? 'an unknown machine'}, not ${target.arch}`, {
          stage: 'build',
          target: target.name,
          remedy: `check ARCH/CROSS_COMPILE in target.json (${target.build.makeArgs.join(' ')}) and the toolchain's compilers`,
        });
      }
      await writeFile(join(stage, `${module}.ko`), bytes);
      modules.push({ file: `${module}.ko`, sha256: sha256(bytes), size: bytes.length, vermagic });
    }
    await writeFile(
      join(stage, 'build.json'),
      stableJson({
        target: target.name,
        inputs: {
          targetJsonSha256: sha256(stableJson(target)),
          toolchain: { name: target.toolchain.name, image },
          headers: target.headers.map((h) => ({ name: h.name, version: h.version, sha256: h.sha256 })),
          driverSources: sources,
          make: cmd,
          env: target.build.env,
        },
        outputs: modules,
        ...(skipped ? { skipped } : {}),
      }),
    );
    await writeFile(join(stage, 'build.log'), `${lines.join('\n')}\n`);
    // Replace the whole output folder in one step: never a mix of old and new, never a partial .ko.
    await rm(o.outDir, { recursive: true, force: true });
    await rename(stage, o.outDir);
    await rm(logFile, { force: true });
    return { modules, logFile: join(o.outDir, 'build.log'), ...(skipped ? { skipped } : {}) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
