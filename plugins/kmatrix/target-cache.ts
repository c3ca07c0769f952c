/**
 * What the plugin learned from each target.json, kept between nx commands and keyed by the file's
 * exact bytes. Validating 5,000 target files with zod is a third of a second on every command
 * (measured by profiling `nx affected` at 5,000 targets); a file whose bytes were validated
 * before is not validated again. Only the fields the project node needs are kept — the build
 * reads and validates the whole target.json itself. Invalid files are never cached.
 *
 * The cache is salted with the source of the schemas and of the distro families, so a change to
 * what "valid" means or to which family a target is of throws every entry away. A missing,
 * stale or unreadable cache file only costs the time it saves.
 *
 * The key of a file's bytes is xxHash64 (xxhash-wasm), not a cryptographic hash: it only tells
 * "the bytes validated last time" from "other bytes" on this machine, and an attacker who can
 * write target.json files needs no collision. Every nx command keys every target.json (~26 MB at
 * 5,000 targets, ~100 MB at 20,000): SHA-1 took 20 ms per 5,000 files, xxHash64 5 ms (+9 ms to
 * instantiate the WebAssembly module once), measured on the bench machine.
 */
import { createHash } from 'node:crypto';
import xxhash from 'xxhash-wasm';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from '../../tools/kmatrix/model/target.ts';

/** The part of a target the project node is made of. */
export type TargetNode = Pick<Target, 'name' | 'distro' | 'kernelrelease' | 'arch'> & {
  /** The distro family its header packages belong to (deb, rpm). */
  family: string;
  driver: Pick<Target['driver'], 'name' | 'path' | 'modules' | 'smokeTest'>;
  toolchain: Pick<Target['toolchain'], 'name'>;
};

/** The node of a validated target, whose header packages are of the distro family `family`. */
export function nodeOf(t: Target, family: string): TargetNode {
  return {
    name: t.name,
    distro: t.distro,
    kernelrelease: t.kernelrelease,
    arch: t.arch,
    family,
    driver: {
      name: t.driver.name,
      path: t.driver.path,
      modules: t.driver.modules,
      ...(t.driver.smokeTest ? { smokeTest: t.driver.smokeTest } : {}),
    },
    toolchain: { name: t.toolchain.name },
  };
}

/** null: the marker of a removed target (no project). */
type Entry = [key: string, node: TargetNode | null];

const FORMAT = 4;
const here = dirname(fileURLToPath(import.meta.url));
/**
 * What a cached node depends on besides the file's bytes — every model/ source (the schemas among
 * them) and the distro families, whose header roles decide a target's family — so that a change
 * to any of them re-validates every target.
 */
const MODEL = resolve(here, '../../tools/kmatrix/model');
const DISTROS = resolve(here, '../../tools/kmatrix/distros');
const SALT_SOURCES = [
  ...readdirSync(MODEL)
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => join(MODEL, f)),
  join(DISTROS, 'registry.ts'),
  ...readdirSync(DISTROS, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(DISTROS, e.name, 'family.ts')))
    .map((e) => join(DISTROS, e.name, 'family.ts'))
    .sort(),
];

function salt(): string {
  const h = createHash('sha1').update(`kmatrix-target-cache ${FORMAT}\n`);
  for (const f of SALT_SOURCES) h.update(readFileSync(f));
  return h.digest('hex');
}

/** Where Nx keeps its own workspace data (same variables, same default). */
function workspaceDataDir(workspaceRoot: string): string {
  const dir =
    process.env.NX_WORKSPACE_DATA_DIRECTORY ??
    process.env.NX_PROJECT_GRAPH_CACHE_DIRECTORY ??
    join(workspaceRoot, '.nx', 'workspace-data');
  return isAbsolute(dir) ? dir : join(workspaceRoot, dir);
}

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasher: Promise<Hasher> | undefined;

export class TargetCache {
  private readonly file: string;
  private readonly hasher: Hasher;
  private readonly salt = salt();
  private readonly old = new Map<string, Entry>();
  private readonly now = new Map<string, Entry>();
  private changed = false;

  /** The cache of this workspace (the hash function is instantiated once per process). */
  static async open(workspaceRoot: string): Promise<TargetCache> {
    hasher ??= xxhash();
    return new TargetCache(workspaceRoot, await hasher);
  }

  private constructor(workspaceRoot: string, h: Hasher) {
    this.hasher = h;
    this.file = join(workspaceDataDir(workspaceRoot), 'kmatrix-targets.json');
    try {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as { salt: string; entries: Record<string, Entry> };
      if (saved.salt === this.salt) for (const [k, v] of Object.entries(saved.entries)) this.old.set(k, v);
    } catch {
      // no cache yet, or an unreadable one: everything is validated
    }
  }

  /** The key of a file's bytes. */
  digest(text: string): string {
    return this.hasher.h64ToString(text);
  }

  /** The node for these exact bytes, if they were validated before (undefined: not known). */
  get(file: string, key: string): TargetNode | null | undefined {
    const e = this.old.get(file);
    if (!e || e[0] !== key) return undefined;
    this.now.set(file, e);
    return e[1];
  }

  set(file: string, key: string, node: TargetNode | null): void {
    this.now.set(file, [key, node]);
    this.changed = true;
  }

  /** Writes the entries of this run (files that are gone drop out) when anything changed. */
  save(): void {
    if (!this.changed && this.now.size === this.old.size) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(tmp, JSON.stringify({ salt: this.salt, entries: Object.fromEntries(this.now) }));
      renameSync(tmp, this.file);
    } catch {
      rmSync(tmp, { force: true }); // a cache that cannot be written is only slower next time
    }
  }
}
