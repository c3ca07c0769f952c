/**
 * Builds one target: header packages from the store, the driver's sources copied into a scratch
 * folder, `make modules` in the toolchain container (by digest, network none), then the .ko files
 * and build.json moved into the output folder in one rename. Shared by the Nx executor and the CLI.
 */
import type Docker from 'dockerode';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { stableJson } from '../core/atomic-file.ts';
import { CONTAINER_SRC, type Target } from '../model/target.ts';
import { familyOfHeaders } from '../distros/registry.ts';
import { ensureImage } from '../core/docker.ts';
import type { HeaderStore } from '../packages/store.ts';
import { runInContainer, type Bind } from './container.ts';
import { handToSandbox, type SandboxLimits, sandboxLimits } from './sandbox.ts';
import { checkForeignHostTools } from './foreign-host-tools.ts';
import { BuildOutput } from './build-output.ts';
import { modinfoField } from '../model/modinfo.ts';
import { hashTree, sha256 } from '../core/hash.ts';
import { elfArch, kernelCompiler } from '../model/kernel-config.ts';
import { compilerDifference, gccOfToolchain, type CompilerRecord } from '../model/compiler.ts';
import { BUILD_RECORD, builderFromEnv, type BuildRecord } from '../model/build-record.ts';
import { BuildFailedError } from './result.ts';
import { DKMS_OUT, DKMS_VAR_MARKER, dkmsCommand, dkmsModules, dkmsSkip, readEvaluation } from './dkms.ts';

export interface BuildOptions {
  root: string;
  target: Target;
  /** The image repository the toolchain was pushed to (from its lock). */
  repository: string;
  /** Every package in the toolchain image with its version (from its lock), for the record. */
  toolchainPackages?: Record<string, string>;
  outDir: string;
  store: HeaderStore;
  docker: Docker;
  log: (line: string) => void;
  timeoutMs?: number;
  /** make -j for the build (a DKMS driver's MAKE): its share of the machine's CPUs. Default 1. */
  jobs?: number;
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

/** Each header package's folders, mounted read-only where its distro family's layout puts them. */
async function headerBinds(store: HeaderStore, target: Target): Promise<Bind[]> {
  const family = familyOfHeaders(target.headers);
  const binds: Bind[] = [];
  for (const pkg of target.headers) {
    for (const m of await family.headerMounts(await store.tree(pkg)))
      binds.push({ host: m.host, container: m.container, readOnly: true });
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

/** The exact command a build runs (also what `kmatrix cache explain` compares). */
export function makeCommand(target: Target): string[] {
  if (target.driver.dkms) return dkmsCommand('build', target.kernelrelease, target.arch);
  return [
    'make',
    '-C',
    target.kernelDir,
    `M=${CONTAINER_SRC}`,
    ...target.build.makeArgs,
    `KCFLAGS=${target.build.kcflags.join(' ')}`,
    'modules',
  ];
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

/** Everything about the build container except the command: the image by digest, the header
 * trees and the driver's sources mounted where the build expects them, the environment, the
 * sandbox's limits (its user is sandbox.ts's). `kmatrix reproduce --shell` opens exactly this container. */
export interface BuildContainer {
  image: string;
  env: Record<string, string>;
  workdir: string;
  binds: Bind[];
  limits: SandboxLimits;
}

/** Header trees in the store and the image by digest: everything a build needs before it writes anything. */
export async function prepareContainer(
  o: Pick<BuildOptions, 'target' | 'repository' | 'store' | 'docker' | 'jobs' | 'toolchainPackages'>,
): Promise<{
  container: (src: string) => Promise<BuildContainer>;
  compiler: { note?: string; record?: CompilerRecord };
}> {
  const { target } = o;
  const limits = sandboxLimits(o.jobs ?? 1);
  const image = `${o.repository}@${target.toolchain.digest}`;
  const binds = await headerBinds(o.store, target);
  const kernelTree = binds.find((b) => b.container === target.kernelDir)!.host;
  const compiler = await checkCompiler(target, kernelTree, o.toolchainPackages);
  checkForeignHostTools(target.build.env);
  await ensureImage(
    o.docker,
    image,
    `build and push it with \`npx kmatrix toolchain build ${target.toolchain.name}\`, then \`npx kmatrix gen\``,
  );
  // DKMS trees run their own make command: kbuild takes ARCH, CROSS_COMPILE and KCFLAGS from the
  // environment, and many dkms.conf files look for the kernel at /lib/modules/<release>/build.
  const dkmsEnv = target.driver.dkms
    ? {
        ...Object.fromEntries(target.build.makeArgs.map((a) => a.split('=') as [string, string])),
        KCFLAGS: target.build.kcflags.join(' '),
      }
    : {};
  return {
    container: async (src) => {
      // /lib/modules/<release>/build is a symlink to the headers, as on a real machine: kbuild
      // follows the physical path, and the headers' relative links (tools -> ../../lib/linux-kbuild-*)
      // only resolve from /usr/src. A folder beside the sources holds it, mounted read-only.
      const dkmsBinds: Bind[] = [];
      if (target.driver.dkms) {
        const links = join(dirname(src), 'lib-modules');
        await mkdir(links, { recursive: true });
        await symlink(target.kernelDir, join(links, 'build')).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
        dkmsBinds.push({ host: links, container: `/lib/modules/${target.kernelrelease}`, readOnly: true });
      }
      await handToSandbox(src);
      return {
        image,
        env: { ...target.build.env, ...dkmsEnv },
        workdir: CONTAINER_SRC,
        binds: [...binds, ...dkmsBinds, { host: src, container: CONTAINER_SRC, readOnly: false }],
        limits,
      };
    },
    compiler,
  };
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
    const src = join(scratch, 'src');
    await cp(join(o.root, target.driver.path), src, { recursive: true });
    const sources = await hashTree(src);
    const container = await prepared.container(src);
    const { image } = container;
    const cmd = makeCommand(target);
    if (prepared.compiler.note) output.add(prepared.compiler.note);
    // The DKMS script is long; the log names it (its text is in build.json's provenance).
    const shown = target.driver.dkms ? ['tools/kmatrix/compile/dkms-build.sh', ...cmd.slice(4)] : cmd;
    o.log(`$ ${shown.join(' ')}   [${image}]`);
    const result = await runInContainer(o.docker, {
      ...container,
      // make -j: the build's CPU share (DKMS's MAKE; it changes no byte, so it is not recorded).
      env: { ...container.env, ...(target.driver.dkms ? { KMATRIX_JOBS: String(o.jobs ?? 1) } : {}) },
      cmd,
      labels: { 'kmatrix.target': target.name, 'kmatrix.out': o.outDir },
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
          image,
          ...(o.toolchainPackages ? { packages: o.toolchainPackages } : {}),
        },
        headers: target.headers.map((h) => ({ name: h.name, version: h.version, sha256: h.sha256 })),
        driverSources: sources,
        make: cmd,
        env: target.build.env,
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
