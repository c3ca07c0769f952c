/**
 * Builds one target by running its recipe (target.json's `recipe`: the toolchain image by digest,
 * the header trees and a scratch copy of the driver's sources mounted, the command, the sandbox),
 * then checks the .ko files and moves them and build.json into the output folder in one rename.
 * Shared by the Nx executor and the CLI.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { stableJson } from '../core/atomic-file.ts';
import type { Target } from '../model/target.ts';
import { runInContainer } from './container.ts';
import { prepareContainer, type PrepareOptions } from './prepare.ts';
import { RECIPE_VERSION } from '../recipe/version.ts';
import { BuildOutput } from './build-output.ts';
import { modinfoField } from '../model/modinfo.ts';
import { hashTree, sha256 } from '../core/hash.ts';
import { elfArch } from '../model/kernel-config.ts';
import { BUILD_RECORD, builderFromEnv, type BuildRecord } from '../model/build-record.ts';
import { BuildFailedError } from './result.ts';
import { DKMS_OUT, DKMS_VAR_MARKER, dkmsModules, dkmsSkip, readEvaluation } from './dkms.ts';

export interface BuildOptions extends PrepareOptions {
  root: string;
  outDir: string;
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

/** A kernel module is a few MB; anything past this is not one (the build's folder is the driver's to write). */
const MAX_MODULE_BYTES = 256 * 1024 * 1024;

/**
 * A built module's bytes, read only if it is a regular file of a sane size: the folder it is in
 * was written by the driver's build, which could leave a symlink to /dev/zero or a FIFO there.
 */
async function readModuleFile(file: string): Promise<Buffer | undefined> {
  const st = await lstat(file).catch(() => undefined);
  if (!st?.isFile() || st.size > MAX_MODULE_BYTES) return undefined;
  return readFile(file);
}

async function findKo(dir: string, module: string): Promise<string | undefined> {
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === `${module}.ko`) return join(e.parentPath, e.name);
  }
  return undefined;
}

/**
 * Where each module of this build is: the policy's names found anywhere in the tree, or for a
 * DKMS driver the modules its dkms.conf named for this kernel, where dkms-build.sh left them
 * (checked against the policy's list when it has one).
 */
async function builtModules(
  target: Target,
  src: string,
  lines: string[],
  logFile: string,
): Promise<{ name: string; file?: string }[]> {
  if (!target.driver.dkms)
    return Promise.all(target.driver.modules!.map(async (name) => ({ name, file: await findKo(src, name) })));
  const modules = dkmsModules(readEvaluation(lines), target.name).map((m) => m.dest);
  const listed = target.driver.modules;
  if (listed && (listed.length !== modules.length || listed.some((m) => !modules.includes(m)))) {
    throw new BuildFailedError(
      `dkms.conf names the modules ${modules.join(', ') || '(none)'} for this kernel, but the policy lists ${listed.join(', ')}`,
      {
        stage: 'build',
        target: target.name,
        logFile,
        remedy: `remove "modules" from the driver in support-matrix.json (dkms.conf names them for each kernel) or correct it; log: ${logFile}`,
      },
    );
  }
  // The build could have swapped the folder for a link out of the tree: only a real folder is read.
  const out = join(src, DKMS_OUT);
  if (!(await lstat(out).catch(() => undefined))?.isDirectory()) return modules.map((name) => ({ name }));
  return modules.map((name) => ({ name, file: join(out, `${name}.ko`) }));
}

/**
 * Each built module, checked — a regular file, vermagic of the target's kernel, an ELF object of
 * its arch — and copied into the stage folder.
 */
async function checkedModules(
  target: Target,
  found: { name: string; file?: string }[],
  stage: string,
  logFile: string,
): Promise<BuiltModule[]> {
  const modules: BuiltModule[] = [];
  for (const { name: module, file: ko } of found) {
    const bytes = ko ? await readModuleFile(ko) : undefined;
    if (!bytes) {
      throw new BuildFailedError(`make succeeded but produced no ${module}.ko`, {
        stage: 'build',
        target: target.name,
        logFile,
        remedy: `check the driver's Kbuild (obj-m) against "modules" in support-matrix.json; log: ${logFile}`,
      });
    }
    const vermagic = modinfoField(bytes, 'vermagic') ?? '';
    if (!vermagic.startsWith(`${target.kernelrelease} `)) {
      throw new KmatrixError(`${module}.ko has vermagic "${vermagic}", not ${target.kernelrelease}`, {
        stage: 'build',
        target: target.name,
        remedy: "the headers mounted are not the target kernel's: re-run `npx kmatrix gen`",
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
  return modules;
}

export async function buildTarget(o: BuildOptions): Promise<BuildResult> {
  const { target } = o;
  // Headers and image first: a download or Docker problem leaves no folder behind.
  const prepared = await prepareContainer(o);
  await mkdir(dirname(o.outDir), { recursive: true });
  // A build killed outright (Ctrl-C on nx ends the executor before its finally) leaves its
  // scratch folder: the next build of the same target clears it.
  for (const f of await readdir(dirname(o.outDir))) {
    if (f.startsWith(`.${basename(o.outDir)}.work-`))
      await rm(join(dirname(o.outDir), f), { recursive: true, force: true });
  }
  const scratch = await mkdtemp(join(dirname(o.outDir), `.${basename(o.outDir)}.work-`));
  const logFile = join(dirname(o.outDir), `${basename(o.outDir)}.build.log`);
  let output: BuildOutput | undefined;
  try {
    // What dkms.conf evaluated to is for us (and the log file), not for the terminal.
    output = new BuildOutput(logFile, (line) => line.startsWith(DKMS_VAR_MARKER) || o.log(line));
    const container = await prepared.container(o.root, scratch, {
      'kmatrix.target': target.name,
      'kmatrix.out': o.outDir,
    });
    const src = container.sourceDir;
    const sources = await hashTree(src);
    const { recipe } = target;
    if (prepared.compiler.note) output.add(prepared.compiler.note);
    // A script's text is long: the log names it by its recipe reference (its digest is in the recipe).
    o.log(`$ ${recipe.argv.join(' ')}   [${container.options.Image}]`);
    const result = await runInContainer(o.docker, container.options, {
      timeoutMs: o.timeoutMs,
      onLine: (line) => output!.add(line),
    }).finally(() => output!.close());
    if (output.writeError) {
      throw new KmatrixError(
        `cannot write the build log ${logFile}: ${output.writeError.code ?? output.writeError.message}`,
        {
          stage: 'build',
          target: target.name,
          remedy: 'free space on the disk that holds dist/, then build again',
        },
      );
    }
    const lines = output.head;
    // A value dkms.conf set for this kernel that cannot work is named, before the exit status is.
    if (target.driver.dkms && result.exitCode !== 0) dkmsModules(readEvaluation(lines), target.name);
    if (result.exitCode !== 0) {
      throw new BuildFailedError(
        result.timedOut
          ? `build timed out after ${o.timeoutMs} ms`
          : `${target.driver.dkms ? 'the DKMS build' : 'make'} exited with status ${result.exitCode}`,
        { stage: 'build', target: target.name, problems: output.problems(), logFile, remedy: `full log: ${logFile}` },
      );
    }

    const stage = join(scratch, 'out');
    await mkdir(stage);
    // A DKMS driver that excludes this kernel (BUILD_EXCLUSIVE_*): a skip with its reason, no module.
    const skipped = target.driver.dkms ? dkmsSkip(lines) : undefined;
    const modules = skipped
      ? []
      : await checkedModules(target, await builtModules(target, src, lines, logFile), stage, logFile);
    const record: BuildRecord = {
      target: target.name,
      inputs: {
        targetJsonSha256: sha256(stableJson(target)),
        toolchain: {
          name: target.toolchain.name,
          image: container.options.Image!,
          ...(o.toolchainPackages ? { packages: o.toolchainPackages } : {}),
        },
        headers: target.headers.map((h) => ({ name: h.name, version: h.version, sha256: h.sha256 })),
        driverSources: sources,
        make: recipe.argv,
        env: recipe.env,
        recipe,
        recipeVersion: RECIPE_VERSION,
      },
      outputs: modules,
      ...(prepared.compiler.record ? { compiler: prepared.compiler.record } : {}),
      ...(skipped ? { skipped } : {}),
      builder: builderFromEnv(),
    };
    await writeFile(join(stage, BUILD_RECORD), stableJson(record));
    await rename(logFile, join(stage, 'build.log'));
    // Replace the whole output folder in one step: never a mix of old and new, never a partial .ko.
    await rm(o.outDir, { recursive: true, force: true });
    await rename(stage, o.outDir);
    return { modules, logFile: join(o.outDir, 'build.log'), ...(skipped ? { skipped } : {}) };
  } finally {
    output?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
