/**
 * A target's build recipe, rendered from its spec by one pure function: the image by digest, each
 * mount, the user, environment, working folder and argv, the digest of every script injected, and
 * the sandbox. `kmatrix gen` writes it into target.json; the build runs exactly it (container.ts)
 * after checking it is what this code renders (check.ts).
 */
import type { BuildRecipe, RecipeMount } from '../model/recipe.ts';
import { CONTAINER_SRC, type TargetSpec } from '../model/target.ts';
import { familyOfHeaders } from '../distros/registry.ts';
import { scriptDigest, scriptOf, scriptRef, type ScriptName } from './scripts.ts';
import { SANDBOX } from './sandbox.ts';

/** What a build recipe is rendered from. */
export type BuildSpec = Pick<
  TargetSpec,
  'driver' | 'kernelrelease' | 'arch' | 'headers' | 'kernelDir' | 'toolchain' | 'build'
>;

/** A DKMS tree's command (dkms-build.sh, by reference): `eval` reports what dkms.conf says, `build` builds. */
export function dkmsArgv(mode: 'eval' | 'build', kernelrelease: string, arch: string): string[] {
  const kernelDir = kernelrelease ? `/lib/modules/${kernelrelease}/build` : '/nonexistent';
  return ['bash', '-c', scriptRef('dkms-build'), 'kmatrix-dkms', mode, kernelrelease, kernelDir, arch];
}

/** The command: kbuild's external-module build, or for a DKMS tree dkms-build.sh. */
function argvOf(spec: BuildSpec): string[] {
  if (spec.driver.dkms) return dkmsArgv('build', spec.kernelrelease, spec.arch);
  return [
    'make',
    '-C',
    spec.kernelDir,
    `M=${CONTAINER_SRC}`,
    ...spec.build.makeArgs,
    `KCFLAGS=${spec.build.kcflags.join(' ')}`,
    'modules',
  ];
}

/**
 * DKMS trees run their own make command: kbuild takes ARCH, CROSS_COMPILE and KCFLAGS from the
 * environment, and many dkms.conf files look for the kernel at /lib/modules/<release>/build.
 */
function envOf(spec: BuildSpec): Record<string, string> {
  if (!spec.driver.dkms) return { ...spec.build.env };
  return {
    ...spec.build.env,
    ...Object.fromEntries(spec.build.makeArgs.map((a) => a.split('=') as [string, string])),
    KCFLAGS: spec.build.kcflags.join(' '),
  };
}

function mountsOf(spec: BuildSpec): RecipeMount[] {
  const rules = familyOfHeaders(spec.headers).headerMountRules;
  const mounts: RecipeMount[] = spec.headers.flatMap((h) =>
    rules.map((rule) => ({ kind: 'package' as const, sha256: h.sha256, ...rule })),
  );
  // As on a real machine, /lib/modules/<release>/build is a link to the headers: kbuild follows
  // the physical path, and the headers' relative links only resolve from where they are installed.
  if (spec.driver.dkms)
    mounts.push({ kind: 'links', to: `/lib/modules/${spec.kernelrelease}`, links: { build: spec.kernelDir } });
  // The smoke test runs in the boot test's guest, never in a build: it is not copied in.
  mounts.push({
    kind: 'source',
    path: spec.driver.path,
    exclude: spec.driver.smokeTest ? [spec.driver.smokeTest] : [],
    to: CONTAINER_SRC,
  });
  return mounts;
}

/** Every command runs under the watchdog (scripts.ts). */
const WRAPPER = ['/bin/sh', '-c', scriptRef('watchdog'), 'kmatrix-watchdog'];

/** The SHA256 of each script the wrapper and `argv` name, read from the command itself. */
function scriptDigestsOf(argv: string[]): Record<string, string> {
  const used = [...WRAPPER, ...argv].map(scriptOf).filter((n): n is ScriptName => n !== undefined);
  return Object.fromEntries(used.map((name) => [name, scriptDigest(name)]));
}

/**
 * A recipe that runs one tool of a toolchain image (by digest) in the build sandbox, with no mounts
 * of its own: `kmatrix driver import`'s evaluation of a dkms.conf, depmod for a KMM image.
 */
export function toolRecipe(image: string, argv: string[], workdir: string): BuildRecipe {
  return {
    image,
    mounts: [],
    user: 'unprivileged',
    workdir,
    env: { LC_ALL: 'C' },
    argv,
    wrapper: WRAPPER,
    scripts: scriptDigestsOf(argv),
    sandbox: SANDBOX,
  };
}

export function renderBuildRecipe(spec: BuildSpec): BuildRecipe {
  const argv = argvOf(spec);
  return {
    image: spec.toolchain.digest,
    mounts: mountsOf(spec),
    user: 'unprivileged',
    workdir: CONTAINER_SRC,
    env: envOf(spec),
    argv,
    wrapper: WRAPPER,
    scripts: scriptDigestsOf(argv),
    ...(spec.driver.dkms ? { jobsEnv: 'KMATRIX_JOBS' } : {}),
    sandbox: SANDBOX,
  };
}
