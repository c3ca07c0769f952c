import { cp, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../errors.ts';
import { stableJson, writeFileAtomic } from '../files/atomic.ts';
import { parseWith } from '../files/json.ts';
import { connectDocker, ensureImage } from '../docker/engine.ts';
import { runInContainer } from '../build/container.ts';
import { DKMS_MODULES_SCRIPT } from '../build/dkms.ts';
import { identifier } from '../matrix/names.ts';
import { loadPolicy, POLICY_FILE, validPolicy } from '../matrix/policy.ts';
import { loadToolchain, requireLock } from '../toolchain/spec.ts';
import { log, parse, type Command } from './command.ts';

const help = `Usage: npx kmatrix driver import SOURCE [--name NAME] [--toolchain NAME] [--policy FILE]

Adds a DKMS driver: SOURCE is a DKMS source tree (a folder with dkms.conf) or a *-dkms .deb
(its /usr/src/<name>-<version>/ tree is used). dkms.conf is a bash fragment, so it is evaluated
by bash inside the toolchain container, as DKMS would, to learn the modules it builds
(BUILT_MODULE_NAME[], else PACKAGE_NAME). The tree is copied to drivers/NAME/ and declared in
the policy as {"path": "drivers/NAME", "modules": [...], "dkms": true}; add a matrix rule for it
and run \`npx kmatrix gen\`.

Each build then evaluates dkms.conf for its kernel (kernelver, kernel_source_dir, arch,
dkms_tree set), applies PATCH[], runs MAKE[0], and honours BUILD_EXCLUSIVE_KERNEL, _ARCH and
_CONFIG: a kernel the driver excludes is reported as skipped, with the reason, not failed.

Options:
  --name NAME       driver name (default: the PACKAGE_NAME of dkms.conf)
  --toolchain NAME  toolchain whose container evaluates dkms.conf (default: the policy's first distro's)
  --policy FILE     the policy to add it to (default: ${POLICY_FILE})
`;

/** The folder holding dkms.conf: SOURCE itself, or the one tree a -dkms .deb ships in /usr/src. */
async function dkmsTree(source: string, scratch: string): Promise<string> {
  const st = await stat(source).catch(() => undefined);
  if (!st) throw new KmatrixError(`${source} does not exist`, { stage: 'usage', remedy: 'pass a DKMS source folder (with dkms.conf) or a *-dkms .deb' });
  let dir = source;
  if (st.isFile()) {
    await execa('dpkg-deb', ['-x', source, join(scratch, 'deb')]).catch((error: Error) => {
      throw new KmatrixError(`cannot unpack ${source}: ${error.message}`, { stage: 'usage', remedy: 'pass a .deb built by dkms (e.g. apt-get download v4l2loopback-dkms)' });
    });
    const src = join(scratch, 'deb', 'usr', 'src');
    const trees = await readdir(src).catch(() => [] as string[]);
    const withConf = [];
    for (const t of trees) if (await stat(join(src, t, 'dkms.conf')).catch(() => undefined)) withConf.push(t);
    if (withConf.length !== 1) throw new KmatrixError(`${source} ships ${withConf.length} DKMS trees under /usr/src (need exactly one)`, { stage: 'usage', remedy: 'unpack it and pass the tree you want' });
    dir = join(src, withConf[0]!);
  }
  if (!(await stat(join(dir, 'dkms.conf')).catch(() => undefined))) {
    throw new KmatrixError(`${source} has no dkms.conf`, { stage: 'usage', remedy: 'a DKMS source tree has dkms.conf at its top; for a plain Kbuild driver, declare it in support-matrix.json directly' });
  }
  return dir;
}

async function evaluateModules(tree: string, toolchainName: string, root: string): Promise<{ names: string[]; output: string[] }> {
  const lock = requireLock(await loadToolchain(root, toolchainName));
  // The image the toolchain's targets build with: the lock's digest.
  const image = `${lock.repository}@${lock.digest}`;
  const docker = await connectDocker();
  await ensureImage(docker, image, `build it with \`npx kmatrix toolchain build ${toolchainName}\``);
  const output: string[] = [];
  const r = await runInContainer(docker, {
    image,
    cmd: ['bash', '-c', DKMS_MODULES_SCRIPT],
    env: { LC_ALL: 'C' },
    workdir: '/build/src',
    binds: [{ host: tree, container: '/build/src', readOnly: true }],
    user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
    timeoutMs: 60_000,
    onLine: (l) => output.push(l),
  });
  if (r.exitCode !== 0) throw new KmatrixError(`bash could not evaluate dkms.conf (exit ${r.exitCode})`, { stage: 'usage', problems: output.slice(-5), remedy: 'fix dkms.conf: it must be a bash fragment DKMS can source' });
  return { names: output.map((l) => l.trim()).filter(Boolean), output };
}

export const driverCommand: Command = {
  name: 'driver',
  summary: 'import a DKMS driver (source tree or -dkms .deb)',
  help,
  async run(argv) {
    const { values, positionals } = parse('driver', argv, { name: { type: 'string' }, toolchain: { type: 'string' }, policy: { type: 'string', default: POLICY_FILE } }, true);
    if (positionals[0] !== 'import' || positionals.length !== 2) throw new KmatrixError('usage: kmatrix driver import SOURCE', { stage: 'usage', remedy: 'see `npx kmatrix driver --help`' });
    const root = resolve('.');
    const policy = await loadPolicy(values.policy);
    const toolchain = values.toolchain ?? Object.values(policy.distros)[0]?.toolchain;
    if (!toolchain) throw new KmatrixError('the policy has no distro, so no toolchain to evaluate dkms.conf in', { stage: 'usage', remedy: 'pass --toolchain NAME' });
    const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-dkms-'));
    try {
      const tree = await dkmsTree(resolve(positionals[1]!), scratch);
      const conf = await readFile(join(tree, 'dkms.conf'), 'utf8');
      const packageName = conf.match(/^PACKAGE_NAME=["']?([^"'\n]+)/m)?.[1];
      const name = values.name ?? packageName?.toLowerCase() ?? basename(tree).replace(/-[0-9][^-]*$/, '');
      const valid = identifier.safeParse(name);
      if (!valid.success) throw new KmatrixError(`"${name}" cannot be a driver name: ${valid.error.issues[0]?.message}`, { stage: 'usage', remedy: 'pass --name NAME' });
      if (policy.drivers[name]) throw new KmatrixError(`the policy already has a driver "${name}"`, { stage: 'usage', remedy: 'pass another --name, or remove the old one first' });
      const dest = join(root, 'drivers', name);
      if (await stat(dest).catch(() => undefined)) throw new KmatrixError(`drivers/${name} already exists`, { stage: 'usage', remedy: 'pass another --name, or remove the folder first' });

      const { names } = await evaluateModules(tree, toolchain, root);
      const modules = names.map((m) => m.replace(/\.ko$/, ''));
      for (const m of modules) identifier.parse(m);
      if (modules.length === 0) throw new KmatrixError('dkms.conf names no module (BUILT_MODULE_NAME[] and PACKAGE_NAME are empty)', { stage: 'usage' });

      // Validate the new policy before anything is written; then the folder, then the policy.
      const raw = JSON.parse(await readFile(values.policy, 'utf8')) as { drivers: Record<string, unknown> };
      raw.drivers[name] = { path: `drivers/${name}`, modules, dkms: true };
      parseWith(validPolicy, raw, { file: values.policy, stage: 'policy', what: 'support-matrix policy', remedy: 'this is a bug in driver import; nothing was written' });
      const staging = join(root, 'drivers', `.${name}.import-${process.pid}`);
      await cp(tree, staging, { recursive: true });
      await rename(staging, dest).catch(async (error) => {
        await rm(staging, { recursive: true, force: true });
        throw error;
      });
      await writeFileAtomic(values.policy, stableJson(raw));
      log(`imported ${packageName ?? name} as drivers/${name}: modules ${modules.join(', ')} (dkms.conf evaluated in ${toolchain})`);
      log(`next: add a matrix rule, e.g. {"driver": "${name}", "distro": "${Object.keys(policy.distros)[0]}", "archs": ["x86_64"], "flavours": ["amd64"], "kernels": ["6.1.0-*"], "latest": 1}, then \`npx kmatrix gen\``);
      return 0;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  },
};
