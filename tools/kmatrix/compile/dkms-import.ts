/**
 * `kmatrix driver import` as a library call: a DKMS source tree (or the one a -dkms .deb ships)
 * checked by evaluating its dkms.conf in the toolchain container without a kernel, copied into
 * drivers/ and declared in the policy, all or nothing.
 */
import { cp, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { parseWith } from '../core/json-file.ts';
import { connectDocker, ensureImage } from '../core/docker.ts';
import { loadKernelList, type ListedKernel } from '../model/kernel-list.ts';
import { compareVersions } from '../model/version.ts';
import { identifier } from '../model/names.ts';
import { loadPolicy, validPolicy, type Policy } from '../model/policy.ts';
import { policyText } from '../model/policy-migration.ts';
import { loadToolchain, requireLock } from '../model/toolchain.ts';
import { FAMILIES, familyNamed } from '../distros/registry.ts';
import { runInContainer } from './container.ts';
import { containerOptions, toolRuntime } from '../recipe/container.ts';
import { dkmsArgv, toolRecipe } from '../recipe/build.ts';
import { dkmsModules, dkmsPackage, readEvaluation, type DkmsEvaluation } from './dkms.ts';

export interface DkmsImport {
  root: string;
  /** A DKMS source folder or a *-dkms .deb. */
  source: string;
  policyFile: string;
  /** Default: the PACKAGE_NAME of dkms.conf, made a valid driver name. */
  name?: string;
  /** The toolchain whose container evaluates dkms.conf; default: the policy's first distro's. */
  toolchain?: string;
}

export interface ImportedDriver {
  name: string;
  packageName: string;
  toolchain: string;
  /** The modules dkms.conf names without a kernel's configuration. */
  modules: string[];
  /** A matrix rule that would select kernels of kernels/, as JSON, if there is one. */
  suggestedRule?: string;
}

/** The folder holding dkms.conf: SOURCE itself, or the one tree a -dkms .deb ships in /usr/src. */
async function dkmsTree(source: string, scratch: string): Promise<string> {
  const st = await stat(source).catch(() => undefined);
  if (!st)
    throw new KmatrixError(`${source} does not exist`, {
      stage: 'usage',
      remedy: 'pass a DKMS source folder (with dkms.conf) or a *-dkms .deb',
    });
  let dir = source;
  if (st.isFile()) {
    await execa('dpkg-deb', ['-x', source, join(scratch, 'deb')]).catch((error: Error) => {
      throw new KmatrixError(`cannot unpack ${source}: ${error.message}`, {
        stage: 'usage',
        remedy: 'pass a .deb built by dkms (e.g. apt-get download v4l2loopback-dkms)',
      });
    });
    const src = join(scratch, 'deb', 'usr', 'src');
    const trees = await readdir(src).catch(() => [] as string[]);
    const withConf = [];
    for (const t of trees) if (await stat(join(src, t, 'dkms.conf')).catch(() => undefined)) withConf.push(t);
    if (withConf.length !== 1)
      throw new KmatrixError(`${source} ships ${withConf.length} DKMS trees under /usr/src (need exactly one)`, {
        stage: 'usage',
        remedy: 'unpack it and pass the tree you want',
      });
    dir = join(src, withConf[0]!);
  }
  if (!(await stat(join(dir, 'dkms.conf')).catch(() => undefined))) {
    throw new KmatrixError(`${source} has no dkms.conf`, {
      stage: 'usage',
      remedy:
        'a DKMS source tree has dkms.conf at its top; for a plain Kbuild driver, declare it in support-matrix.json directly',
    });
  }
  return dir;
}

/** dkms.conf evaluated once with no kernel (its .config absent), as a check it can be sourced and names its package. */
async function evaluateWithoutKernel(tree: string, toolchainName: string, root: string): Promise<DkmsEvaluation> {
  const lock = requireLock(await loadToolchain(root, toolchainName));
  // The image the toolchain's targets build with: the lock's digest.
  const image = `${lock.repository}@${lock.digest}`;
  const docker = await connectDocker();
  await ensureImage(docker, image, `build it with \`npx kmatrix toolchain build ${toolchainName}\``);
  const output: string[] = [];
  // The build's sandbox and watchdog, with the tree read-only and only dkms.conf evaluated.
  const options = containerOptions(
    toolRecipe(lock.digest, dkmsArgv('eval', '', 'x86_64'), '/build/src'),
    toolRuntime(lock.repository, [{ host: tree, container: '/build/src', readOnly: true }]),
  );
  const r = await runInContainer(docker, options, { timeoutMs: 60_000, onLine: (l) => output.push(l) });
  if (r.exitCode !== 0) {
    throw new KmatrixError(`bash could not evaluate dkms.conf (exit ${r.exitCode})`, {
      stage: 'build',
      problems: output.slice(-5),
      remedy: 'fix dkms.conf: it must be a bash fragment DKMS can source',
    });
  }
  return readEvaluation(output);
}

/** A driver name from a DKMS package name: lower case, anything else a "-". */
function driverNameOf(packageName: string): string {
  return packageName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '');
}

/**
 * A matrix rule that selects something: the first policy distro with kernels in kernels/, its
 * x86_64 kernels if it has any, the plain flavour if there is one, and its newest kernel's series.
 */
async function suggestedRule(root: string, policy: Policy, driver: string): Promise<string | undefined> {
  const listed: ListedKernel[] = [];
  for (const f of (await readdir(join(root, 'kernels')).catch(() => [] as string[]))
    .filter((x) => x.endsWith('.json'))
    .sort()) {
    const list = await loadKernelList(join(root, 'kernels', f)).catch(() => undefined);
    for (const e of Object.values(list ?? {}).flat())
      if (e.kmatrix) listed.push({ kernelrelease: e.kernelrelease, kmatrix: e.kmatrix });
  }
  for (const [distro, { family, distro: os }] of Object.entries(policy.distros)) {
    const ofDistro = listed.filter((k) => k.kmatrix.distro === distro);
    const arch = ofDistro.some((k) => k.kmatrix.arch === 'x86_64') ? 'x86_64' : ofDistro[0]?.kmatrix.arch;
    // Kernels whose packages the mirror serves: a rule that selects only a mirror gap builds nothing.
    const ofArch = ofDistro.filter((k) => k.kmatrix.arch === arch && !k.kmatrix.unavailable?.length);
    // The family's plain flavour when there is one (Debian's amd64, Ubuntu's generic; not rt or cloud).
    const plain = ofArch.filter((k) => k.kmatrix.flavour === familyNamed(family).plainFlavour(k.kmatrix.arch, os));
    const candidates = (plain.length > 0 ? plain : ofArch).sort((a, b) =>
      compareVersions(a.kmatrix.abi, b.kmatrix.abi),
    );
    const newest = candidates.at(-1);
    if (!newest) continue;
    // Its series (6.1.0-57 → "6.1.*", 6.12.117+deb12 → "6.12.*"): the newest of it is `newest` itself.
    const pattern = `${newest.kmatrix.abi.match(/^\d+\.\d+/)?.[0] ?? newest.kmatrix.abi}.*`;
    return JSON.stringify({
      driver,
      distro,
      archs: [arch],
      flavours: [newest.kmatrix.flavour],
      kernels: [pattern],
      latest: 1,
    });
  }
  return undefined;
}

/** Imports the driver: nothing is written unless every check passes, then the folder, then the policy. */
export async function importDkmsDriver(o: DkmsImport): Promise<ImportedDriver> {
  const { root } = o;
  const policy = await loadPolicy(o.policyFile, FAMILIES);
  const toolchain = o.toolchain ?? Object.values(policy.distros)[0]?.toolchain;
  if (!toolchain)
    throw new KmatrixError('the policy has no distro, so no toolchain to evaluate dkms.conf in', {
      stage: 'usage',
      remedy: 'pass --toolchain NAME',
    });
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-dkms-'));
  try {
    const tree = await dkmsTree(resolve(o.source), scratch);
    // Every module name and location dkms.conf gives without a kernel is checked here; each
    // build evaluates it again for its own kernel, whose configuration may add or drop modules.
    const evaluation = await evaluateWithoutKernel(tree, toolchain, root);
    const { name: packageName } = dkmsPackage(evaluation);
    const modules = dkmsModules(evaluation, undefined, { withoutKernel: true }).map((m) => m.dest);
    const name = o.name ?? driverNameOf(packageName);
    const valid = identifier.safeParse(name);
    if (!valid.success)
      throw new KmatrixError(`"${name}" cannot be a driver name: ${valid.error.issues[0]?.message}`, {
        stage: 'usage',
        remedy: 'pass --name NAME',
      });
    if (policy.drivers[name])
      throw new KmatrixError(`the policy already has a driver "${name}"`, {
        stage: 'usage',
        remedy: 'pass another --name, or remove the old one first',
      });
    const dest = join(root, 'drivers', name);
    if (await stat(dest).catch(() => undefined))
      throw new KmatrixError(`drivers/${name} already exists`, {
        stage: 'usage',
        remedy: 'pass another --name, or remove the folder first',
      });

    // Validate the new policy before anything is written; then the folder, then the policy.
    const raw = JSON.parse(await readFile(o.policyFile, 'utf8')) as { drivers: Record<string, unknown> };
    raw.drivers[name] = { path: `drivers/${name}`, dkms: true };
    parseWith(validPolicy(FAMILIES), raw, {
      file: o.policyFile,
      stage: 'policy',
      what: 'support-matrix policy',
      remedy: 'this is a bug in driver import; nothing was written',
    });
    const staging = join(root, 'drivers', `.${name}.import-${process.pid}`);
    await cp(tree, staging, { recursive: true });
    await rename(staging, dest).catch(async (error) => {
      await rm(staging, { recursive: true, force: true });
      throw error;
    });
    await writeFileAtomic(o.policyFile, policyText(raw));
    const rule = await suggestedRule(root, policy, name);
    return { name, packageName, toolchain, modules, ...(rule ? { suggestedRule: rule } : {}) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
