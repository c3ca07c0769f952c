/**
 * The kmatrix Nx plugin's options, as a workspace writes them in nx.json:
 *
 *   "plugins": [{ "plugin": "./plugins/kmatrix",
 *                 "options": { "buildTargetName": "build-driver", "testTargetName": "test-driver" } }]
 *
 * Read by the plugin (which targets it creates) and by the commands that run Nx for the user
 * (request, dispatch), so both name the same targets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { KmatrixError } from '../core/errors.ts';
import { zodProblems } from '../core/json-file.ts';

/** An Nx target name: what `nx run <project>:<name>` accepts. */
const targetName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and "-", starting with a letter');

export const pluginOptionsSchema = z
  .object({
    /** The target that builds a target's modules (default build-driver). */
    buildTargetName: targetName.default('build-driver'),
    /** The target that boots a target's kernel and loads them (default test-driver). */
    testTargetName: targetName.default('test-driver'),
    /**
     * For `npm run bench` only: the task is Nx's no-op (nx:noop) instead of a build, with the same inputs,
     * outputs and caching, so Nx's graph, hashing and cache can be measured at 5,000 targets
     * without 5,000 compiles. Never set it in a real workspace.
     */
    benchmarkNoopBuild: z.boolean().optional(),
    /** For `npm run bench` only, with benchmarkNoopBuild: the task writes a module of this many random bytes. */
    benchmarkModuleBytes: z.number().int().positive().optional(),
  })
  .strict()
  .refine((o) => o.buildTargetName !== o.testTargetName, {
    message: 'buildTargetName and testTargetName must differ',
    path: ['testTargetName'],
  });

export type PluginOptions = z.infer<typeof pluginOptionsSchema>;

/** The plugin's entry in nx.json, by how it is named there. */
export const PLUGIN_NAME = './plugins/kmatrix';

/** Options as Nx hands them to the plugin: validated, or an error naming nx.json and the field. */
export function pluginOptions(raw: unknown): PluginOptions {
  const parsed = pluginOptionsSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  throw new KmatrixError('invalid options for the kmatrix plugin in nx.json', {
    stage: 'workspace',
    problems: zodProblems(`nx.json: plugins["${PLUGIN_NAME}"].options`, parsed.error),
    remedy: 'fix them (see README "Nx plugin options")',
  });
}

/** The options the workspace at `root` gives the plugin (defaults when nx.json has none). */
export function workspacePluginOptions(root: string): PluginOptions {
  let nx: { plugins?: (string | { plugin: string; options?: unknown })[] };
  try {
    nx = JSON.parse(readFileSync(join(root, 'nx.json'), 'utf8'));
  } catch {
    return pluginOptions({});
  }
  const entry = nx.plugins?.find((p) => (typeof p === 'string' ? p : p.plugin) === PLUGIN_NAME);
  return pluginOptions(typeof entry === 'object' ? entry.options : {});
}
