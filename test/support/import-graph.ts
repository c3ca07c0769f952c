/**
 * The real import graph of the library and the plugin, and the one-way rule the README's
 * architecture section draws: a module imports only from its own layer or the layers below it,
 * and no chain of imports comes back to where it started.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Bottom to top. A file's layer is its first folder under tools/kmatrix/ (cli.ts sits with commands/). */
export const LAYERS = [
  'core',
  'model',
  'packages',
  'distros',
  'toolchain',
  'recipe',
  'gen',
  'compile',
  'cache',
  'boot',
  'publish',
  'report',
  'fleet',
  'workspace',
  'commands',
  'plugins',
] as const;

export type Graph = Map<string, string[]>;

/** The layer a repository path belongs to, or undefined for files outside the library. */
export function layerOf(path: string): string | undefined {
  if (path.startsWith('plugins/kmatrix/')) return 'plugins';
  if (path === 'tools/kmatrix/cli.ts') return 'commands';
  const m = /^tools\/kmatrix\/([^/]+)\//.exec(path);
  return m ? m[1] : undefined;
}

const STATIC = /(?:^|\n)\s*((?:import|export)\b[^'"`;]*?)from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

export interface ImportKinds {
  /** import('…') (default: included). */
  dynamic?: boolean;
  /** `import type …` / `export type …`, which Node erases: a dependency of the design, not of the running code (default: included). */
  types?: boolean;
}

/** Relative imports of a source text, as written: static ones (side-effect imports too), then dynamic ones. */
export function importsOf(text: string, kinds: ImportKinds = {}): string[] {
  const found = [...text.matchAll(STATIC)]
    .filter((m) => (kinds.types ?? true) || !/^(?:import|export)\s+type\b/.test(m[1] ?? ''))
    .map((m) => (m[2] ?? m[3])!);
  if (kinds.dynamic ?? true) found.push(...[...text.matchAll(DYNAMIC)].map((m) => m[1]!));
  return found.filter((s) => s.startsWith('.'));
}

function sources(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** file → the files it imports, every path relative to the repository root (of the kinds asked for). */
export function readGraph(root: string, options: ImportKinds = {}): Graph {
  const graph: Graph = new Map();
  for (const file of [...sources(root, 'tools/kmatrix'), ...sources(root, 'plugins/kmatrix')]) {
    const text = readFileSync(join(root, file), 'utf8');
    graph.set(
      file,
      importsOf(text, options).map((s) => relative(root, resolve(root, dirname(file), s))),
    );
  }
  return graph;
}

/** Every file reachable from `entries` through `graph`. */
export function closure(graph: Graph, entries: string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const g of graph.get(f) ?? []) visit(g);
  };
  for (const e of entries) visit(e);
  return seen;
}

/** Imports that point up the layer list (or out of it), as "from → to (layer → layer)". */
export function upwardImports(graph: Graph): string[] {
  const rank = (p: string) => LAYERS.indexOf(layerOf(p) as (typeof LAYERS)[number]);
  const out: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) {
      const [a, b] = [rank(from), rank(to)];
      if (a < 0) out.push(`${from} is in no layer (its folder is not one of ${LAYERS.join(', ')})`);
      else if (b < 0) out.push(`${from} → ${to}: the imported file is in no layer`);
      else if (b > a) out.push(`${from} → ${to} (${LAYERS[a]} imports ${LAYERS[b]}, a layer above it)`);
    }
  }
  return [...new Set(out)].sort();
}

const FAMILY = /^tools\/kmatrix\/distros\/([^/]+)\//;

/**
 * Imports of a distro family's own folder from outside it. Only the registry lists the families;
 * everything else goes through the DistroFamily interface, so a family's package names, roles and
 * paths stay in its folder.
 */
export function seamViolations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) {
      const family = FAMILY.exec(to)?.[1];
      if (!family || FAMILY.exec(from)?.[1] === family || from === 'tools/kmatrix/distros/registry.ts') continue;
      out.push(
        `${from} → ${to} (only distros/${family}/ and distros/registry.ts may import the ${family} family's modules)`,
      );
    }
  }
  return out.sort();
}

/** Every import cycle (strongly connected set of two or more files, or a file importing itself). */
export function cycles(graph: Graph): string[][] {
  // Tarjan's algorithm, iterative-free for clarity: the graph has a few hundred nodes.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}
