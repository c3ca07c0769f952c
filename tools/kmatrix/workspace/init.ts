/**
 * `kmatrix init`: turns an existing driver repository into a kmatrix workspace. Everything is
 * planned first (a problem writes nothing), then each file is written atomically only when its
 * content changes, so running it again reports every file "unchanged".
 *
 * What is kmatrix's (its code in tools/kmatrix and plugins/kmatrix, the schemas, the pinned
 * toolchains) is brought to this version's bytes. What is the repository's once written (the
 * policy, nx.json, package.json, the CI workflows, .gitignore) is only added to: the driver, the
 * plugin entry, the missing dependencies and lines; a workflow that exists is left as it is.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { stableJson, writeFileAtomic } from '../core/atomic-file.ts';
import { KmatrixError } from '../core/errors.ts';
import { SHARED_INPUTS } from '../compile/inputs.ts';
import { POLICY_FILE } from '../model/policy.ts';
import { PLUGIN_NAME } from '../model/plugin-options.ts';
import { type DetectedDriver, detectDriver } from './driver-detect.ts';

export type Action = 'created' | 'updated' | 'unchanged';
export interface Written {
  path: string;
  action: Action;
}

export interface InitOptions {
  /** The repository to adopt. */
  root: string;
  /** kmatrix's own tree, whose code and toolchains are copied. */
  kmatrixRoot: string;
  driver?: string;
  name?: string;
  modules?: string[];
  distro: string;
}

/** kmatrix's folders and files that a workspace carries as they are. */
const OWN_TREES = ['tools/kmatrix', 'plugins/kmatrix'];
const OWN_FILES = ['tools/setup-host.sh', 'support-matrix.schema.json', 'toolchains/toolchain.schema.json', '.npmrc'];
const WORKFLOWS = '.github/workflows';
// node_modules without a slash: it may be a link (a shared install), which `node_modules/` does not match.
const IGNORED = ['node_modules', 'dist/', '.nx/', 'reproduce/', '*.tmp-*'];

/** Files that run as programs: the scripts and the command itself (package.json's bin). */
const EXECUTABLE = /\.sh$|^tools\/kmatrix\/cli\.ts$/;

type Json = Record<string, unknown>;
const readText = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : undefined);

function readJson(root: string, path: string): Json | undefined {
  const text = readText(join(root, path));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch (error) {
    throw new KmatrixError(`${path} is not valid JSON (${(error as Error).message})`, {
      stage: 'workspace',
      remedy: `fix ${path}, then run \`npx kmatrix init\` again (nothing was written)`,
    });
  }
}

function filesUnder(base: string, dir: string): string[] {
  return readdirSync(join(base, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(base, join(e.parentPath, e.name)))
    .sort();
}

/** The rule kmatrix's own policy has for the distro, for the driver, on x86_64 only. */
function policyFor(o: InitOptions, driver: DetectedDriver, existing: Json | undefined): Json {
  const own = JSON.parse(readFileSync(join(o.kmatrixRoot, POLICY_FILE), 'utf8'));
  const distro = own.distros?.[o.distro];
  const template = own.matrix?.find((r: Json) => r.distro === o.distro);
  if (!distro || !template)
    throw new KmatrixError(`kmatrix ships no toolchain and rule for the distro "${o.distro}"`, {
      stage: 'usage',
      remedy: `use one of: ${Object.keys(own.distros ?? {}).join(', ')}`,
    });
  const policy: Json = existing ?? { $schema: './support-matrix.schema.json', drivers: {}, distros: {}, matrix: [] };
  const drivers = (policy.drivers ?? {}) as Json;
  if (!drivers[driver.name])
    drivers[driver.name] = driver.dkms
      ? { path: driver.path, dkms: true }
      : { path: driver.path, modules: driver.modules };
  const distros = (policy.distros ?? {}) as Json;
  distros[o.distro] ??= distro;
  const matrix = (policy.matrix ?? []) as Json[];
  if (!matrix.some((r) => r.driver === driver.name))
    matrix.push({ ...template, driver: driver.name, archs: ['x86_64'], flavours: ['amd64'] });
  return { ...policy, drivers, distros, matrix };
}

function nxJsonFor(existing: Json | undefined): Json {
  const nx: Json = existing ?? { $schema: './node_modules/nx/schemas/nx-schema.json' };
  const plugins = (nx.plugins ?? []) as (string | { plugin: string })[];
  if (!plugins.some((p) => (typeof p === 'string' ? p : p.plugin) === PLUGIN_NAME))
    plugins.push({
      plugin: PLUGIN_NAME,
      options: { buildTargetName: 'build-driver', testTargetName: 'test-driver' },
    } as never);
  const namedInputs = { ...SHARED_INPUTS, ...((nx.namedInputs ?? {}) as Json) };
  return { ...nx, plugins, namedInputs, parallel: nx.parallel ?? 2, defaultBase: nx.defaultBase ?? 'main' };
}

/**
 * kmatrix's dependencies and its command (`bin`: `npx kmatrix` runs this workspace's copy, never a
 * package of that name from the registry); a repository's own `type` and `engines` are kept
 * (kmatrix's folders carry their own `"type": "module"`).
 */
function packageJsonFor(root: string, own: Json, existing: Json | undefined): Json {
  const fresh = { name: root.split('/').at(-1)!.toLowerCase(), version: '0.0.0', private: true, type: 'module' };
  const pkg: Json = existing ?? fresh;
  const deps = { ...((pkg.dependencies ?? {}) as Json), ...(own.dependencies as Json) };
  const dev = { ...((pkg.devDependencies ?? {}) as Json), node: (own.devDependencies as Json).node };
  const scripts = { kmatrix: 'node tools/kmatrix/cli.ts', ...((pkg.scripts ?? {}) as Json) };
  const bin = { ...((pkg.bin ?? {}) as Json), kmatrix: 'tools/kmatrix/cli.ts' };
  return { ...pkg, engines: pkg.engines ?? own.engines, bin, scripts, dependencies: deps, devDependencies: dev };
}

/** Every file init would write, with its content (not yet written). */
function plan(o: InitOptions): Map<string, string> {
  // Run from the workspace's own copy of kmatrix, its files are the source: all unchanged.
  const driver = detectDriver(o.root, o);
  const files = new Map<string, string>();
  for (const tree of OWN_TREES)
    for (const f of filesUnder(o.kmatrixRoot, tree)) files.set(f, readFileSync(join(o.kmatrixRoot, f), 'utf8'));
  for (const f of OWN_FILES)
    if (existsSync(join(o.kmatrixRoot, f))) files.set(f, readFileSync(join(o.kmatrixRoot, f), 'utf8'));
  const policy = policyFor(o, driver, readJson(o.root, POLICY_FILE));
  files.set(POLICY_FILE, stableJson(policy));
  const toolchain = ((policy.distros as Json)[o.distro] as { toolchain: string }).toolchain;
  for (const dir of [`toolchains/${toolchain}`, 'toolchains/_guest'])
    for (const f of filesUnder(o.kmatrixRoot, dir)) files.set(f, readFileSync(join(o.kmatrixRoot, f), 'utf8'));
  files.set('nx.json', stableJson(nxJsonFor(readJson(o.root, 'nx.json'))));
  const own = JSON.parse(readFileSync(join(o.kmatrixRoot, 'package.json'), 'utf8')) as Json;
  files.set('package.json', stableJson(packageJsonFor(o.root, own, readJson(o.root, 'package.json'))));
  for (const f of filesUnder(o.kmatrixRoot, WORKFLOWS))
    if (!existsSync(join(o.root, f))) files.set(f, readFileSync(join(o.kmatrixRoot, f), 'utf8'));
  const ignore = readText(join(o.root, '.gitignore')) ?? '';
  const bare = (line: string) => line.trim().replace(/^\//, '').replace(/\/$/, '');
  const have = new Set(ignore.split('\n').map(bare));
  const missing = IGNORED.filter((l) => !have.has(bare(l)));
  files.set(
    '.gitignore',
    missing.length ? `${ignore}${ignore && !ignore.endsWith('\n') ? '\n' : ''}${missing.join('\n')}\n` : ignore,
  );
  return files;
}

export async function initWorkspace(o: InitOptions): Promise<Written[]> {
  const files = plan(o);
  const written: Written[] = [];
  for (const [path, content] of files) {
    const before = readText(join(o.root, path));
    const action: Action = before === undefined ? 'created' : before === content ? 'unchanged' : 'updated';
    if (action !== 'unchanged') {
      await writeFileAtomic(join(o.root, path), content);
      if (EXECUTABLE.test(path)) await chmod(join(o.root, path), 0o755);
    }
    written.push({ path, action });
  }
  return written;
}
