/**
 * Where a kmatrix workspace begins, found from wherever the user stands: the nearest folder,
 * from the current one upwards, that holds the policy (support-matrix.json), as git finds .git
 * and nx finds nx.json. Commands then run from there, and paths the user typed are read from
 * where they were typed.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** The file that marks a workspace's root (the policy; model/policy.ts names it too). */
export const ROOT_MARKER = 'support-matrix.json';

/** The workspace root above (or at) `start`, or undefined outside any workspace. */
export function findWorkspaceRoot(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, ROOT_MARKER))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * A path the user typed, made absolute against the folder they typed it in. Left alone: "-"
 * (stdin/stdout) and URLs (s3://bucket/prefix).
 */
export function userPath(typed: string, invokedIn: string): string {
  if (typed === '-' || /^[a-z][a-z0-9+.-]*:\/\//i.test(typed) || isAbsolute(typed)) return typed;
  return resolve(invokedIn, typed);
}
