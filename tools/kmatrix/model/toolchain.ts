/**
 * toolchains/<name>/: toolchain.json (what it is for) and toolchain.lock.json (the manifest digest
 * it was pushed as, and every package in it with its version). Builds run the image by that
 * digest, never by tag; the image is made by the distro's family from its packages alone, so the
 * same versions give the same digest on any machine.
 */
import { z } from 'zod';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { readJsonFile } from '../core/json-file.ts';
import { arch, identifier, type Arch } from './names.ts';
import { KmatrixError } from '../core/errors.ts';

export const toolchainSchema = z
  .object({
    $schema: z.string().optional(),
    distro: identifier.describe(
      'The policy distro whose kernels this toolchain builds; its family makes the base image',
    ),
    base: z
      .object({
        release: identifier.describe("The family's release the base image is made from, e.g. bookworm"),
      })
      .strict(),
    gcc: z.string().regex(/^\d+$/, 'must be the gcc major version, e.g. "12"'),
    hostArch: arch.describe('The architecture the image runs on'),
    targetArchs: z.array(arch).min(1).describe('Architectures it can build modules for'),
  })
  .strict();
export type ToolchainSpec = z.infer<typeof toolchainSchema>;

export const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>');

export const lockSchema = z
  .object({
    repository: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Where the image lives, when not the default <KMATRIX_REGISTRY>/kmatrix/<name> (the digest is the same in any registry)',
      ),
    digest: digest.describe('The pushed manifest digest; builds run <repository>@<digest>'),
    contextSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .describe('Hash of the toolchain.json and the image format it was built from'),
    packages: z
      .record(z.string(), z.string())
      .optional()
      .describe('Every package in the image with its version: the toolchain identity, reviewable'),
  })
  .strict();
export type ToolchainLock = z.infer<typeof lockSchema>;

export interface Toolchain {
  name: string;
  dir: string;
  spec: ToolchainSpec;
  lock: ToolchainLock | undefined;
}

export function toolchainDir(root: string, name: string): string {
  return join(root, 'toolchains', name);
}

/** GNU triplets of the architectures a toolchain cross-compiles for. */
export const gnuTriplet: Record<Arch, string> = { x86_64: 'x86_64-linux-gnu', aarch64: 'aarch64-linux-gnu' };

export function crossTriplets(spec: ToolchainSpec): string[] {
  return spec.targetArchs.filter((a) => a !== spec.hostArch).map((a) => gnuTriplet[a]);
}

export async function loadToolchain(root: string, name: string): Promise<Toolchain> {
  const dir = toolchainDir(root, name);
  if (!existsSync(join(dir, 'toolchain.json'))) {
    throw new KmatrixError(`no toolchain "${name}" (missing ${join('toolchains', name, 'toolchain.json')})`, {
      stage: 'toolchain',
      remedy: `create toolchains/${name}/toolchain.json (see toolchains/debian-bookworm/)`,
    });
  }
  const spec = await readJsonFile(toolchainSchema, join(dir, 'toolchain.json'), {
    stage: 'toolchain',
    what: 'toolchain description',
    remedy: 'fix the fields listed above',
  });
  const lockFile = join(dir, 'toolchain.lock.json');
  const lock = existsSync(lockFile)
    ? await readJsonFile(lockSchema, lockFile, {
        stage: 'toolchain',
        what: 'toolchain lock',
        remedy: `rebuild it with \`npx kmatrix toolchain build ${name}\``,
      })
    : undefined;
  return { name, dir, spec, lock };
}

/** Every toolchains/<name>/ with a toolchain.json (folders starting with "_" hold shared files). */
export async function loadAllToolchains(root: string): Promise<Toolchain[]> {
  let names: string[] = [];
  try {
    names = (await readdir(join(root, 'toolchains'), { withFileTypes: true }))
      .filter(
        (e) =>
          e.isDirectory() && !e.name.startsWith('_') && existsSync(join(root, 'toolchains', e.name, 'toolchain.json')),
      )
      .map((e) => e.name)
      .sort();
  } catch {
    // no toolchains/ at all: the policy check names the missing one
  }
  return Promise.all(names.map((n) => loadToolchain(root, n)));
}

/** How two package sets differ, one line per package: `name: pinned → now`. */
export function packageChanges(pinned: Record<string, string>, now: Record<string, string>): string[] {
  const names = [...new Set([...Object.keys(pinned), ...Object.keys(now)])].sort();
  return names.flatMap((n) =>
    pinned[n] === now[n] ? [] : [`${n}: ${pinned[n] ?? '(not in the lock)'} → ${now[n] ?? '(no longer installed)'}`],
  );
}

/** The registry toolchain images are pushed to and pulled from: this site's, not the lock's. */
export function registryAddress(env: NodeJS.ProcessEnv = process.env): string {
  return env.KMATRIX_REGISTRY ?? '127.0.0.1:5000';
}

export function repositoryFor(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return `${registryAddress(env)}/kmatrix/${name}`;
}

/** The lock, with the repository its image is pulled from here. */
export function requireLock(t: Toolchain): ToolchainLock & { repository: string } {
  if (!t.lock) {
    throw new KmatrixError(`toolchain "${t.name}" has not been built and pinned yet`, {
      stage: 'toolchain',
      remedy: `run \`npx kmatrix toolchain build ${t.name}\` (it writes toolchains/${t.name}/toolchain.lock.json)`,
    });
  }
  return { ...t.lock, repository: t.lock.repository ?? repositoryFor(t.name) };
}
