/**
 * Finding the driver in a repository `kmatrix init` adopts: the folder holding dkms.conf, or a
 * Kbuild/Makefile that declares `obj-m`; its name (dkms.conf's PACKAGE_NAME, else the folder's);
 * and, for a plain Kbuild driver, the modules `obj-m` lists. dkms.conf is only read for its name
 * here — `kmatrix driver import` and every build evaluate it properly in the toolchain container.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { identifier, moduleName } from '../model/names.ts';

export interface DetectedDriver {
  name: string;
  /** The driver's folder, relative to the repository root. */
  path: string;
  dkms: boolean;
  /** The modules obj-m lists (plain Kbuild drivers). */
  modules: string[];
}

/** Folders that are never a driver: kmatrix's own, and the usual tool folders. */
const SKIP = new Set(['.git', 'node_modules', 'dist', 'targets', 'toolchains', 'tools', 'plugins', '.github', '.nx']);

function kbuildFile(dir: string): string | undefined {
  for (const f of ['Kbuild', 'Makefile']) {
    const file = join(dir, f);
    if (existsSync(file) && /^\s*obj-m\b/m.test(readFileSync(file, 'utf8'))) return file;
  }
  return undefined;
}

const isDriverDir = (dir: string) => existsSync(join(dir, 'dkms.conf')) || kbuildFile(dir) !== undefined;

/** Driver folders up to two levels below the root. */
function candidates(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || SKIP.has(e.name) || e.name.startsWith('.')) continue;
      const sub = join(dir, e.name);
      if (isDriverDir(sub)) found.push(relative(root, sub));
      else if (depth < 2) walk(sub, depth + 1);
    }
  };
  walk(root, 1);
  return found.sort();
}

/** `obj-m += a.o b.o` / `obj-m := a.o` → [a, b]; a variable in the list means it cannot be read statically. */
export function objM(text: string): string[] | undefined {
  const names: string[] = [];
  for (const m of text.matchAll(/^\s*obj-m\s*[:+?]?=\s*(.*)$/gm)) {
    for (const word of m[1]!.trim().split(/\s+/).filter(Boolean)) {
      if (!/^[A-Za-z0-9_-]+\.o$/.test(word)) return undefined;
      names.push(word.slice(0, -2));
    }
  }
  return names.length > 0 ? [...new Set(names)] : undefined;
}

function packageName(dkmsConf: string): string | undefined {
  return readFileSync(dkmsConf, 'utf8').match(/^\s*PACKAGE_NAME\s*=\s*["']?([A-Za-z0-9._-]+)["']?\s*$/m)?.[1];
}

const usage = (message: string, remedy: string) => new KmatrixError(message, { stage: 'usage', remedy });

function whereIs(root: string, given?: string): string {
  if (given !== undefined) {
    // As typed: relative to the folder the command runs in (init runs where it was typed).
    const path = relative(root, resolve(given)) || '.';
    if (path === '.' || path.startsWith('..'))
      throw usage(
        `--driver ${given} must be a folder inside the repository, not its root`,
        'see `npx kmatrix init --help`',
      );
    if (!isDriverDir(join(root, path)))
      throw usage(
        `${path} holds neither dkms.conf nor a Kbuild/Makefile with obj-m`,
        "pass the folder of the driver's sources",
      );
    return path;
  }
  if (isDriverDir(root))
    throw usage(
      "the driver's sources are at the repository root; kmatrix builds a driver from a folder of its own",
      'move them into a folder (`git mv`), e.g. driver/, and run `npx kmatrix init --driver driver`',
    );
  const found = candidates(root);
  if (found.length === 1) return found[0]!;
  throw found.length === 0
    ? usage('found no driver: no folder holds dkms.conf or a Kbuild/Makefile with obj-m', 'pass --driver PATH')
    : usage(`found several drivers: ${found.join(', ')}`, 'pass the one to adopt with --driver PATH');
}

export function detectDriver(root: string, o: { driver?: string; name?: string; modules?: string[] }): DetectedDriver {
  const path = whereIs(root, o.driver);
  const dkmsConf = join(root, path, 'dkms.conf');
  const dkms = existsSync(dkmsConf);
  const fallback = basename(path)
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-');
  const name = o.name ?? (dkms ? (packageName(dkmsConf)?.toLowerCase() ?? fallback) : fallback);
  if (!identifier.safeParse(name).success)
    throw usage(`"${name}" cannot be a driver name (lower-case letters, digits, ".", "_", "-")`, 'pass --name NAME');
  const modules = dkms ? [] : (o.modules ?? objM(readFileSync(kbuildFile(join(root, path))!, 'utf8')));
  if (!modules) throw usage(`cannot read the module names from obj-m in ${path}`, 'pass them: --modules name1,name2');
  for (const m of modules)
    if (!moduleName.safeParse(m).success) throw usage(`"${m}" is not a module name`, 'check --modules');
  return { name, path, dkms, modules };
}
