/**
 * What `kmatrix dispatch` will run: the commits, a repository the pods can clone, and how many
 * shards (given, or planned from the tasks to run and their recorded build times).
 */
import { workspacePluginOptions } from '../model/plugin-options.ts';
import { KmatrixError } from '../core/errors.ts';
import { git, resolveRef } from '../gen/git-state.ts';
import { timingsFile } from '../model/paths.ts';
import { projectsToRun } from './affected.ts';
import { planShards } from './shard.ts';
import { loadTimings } from './timings.ts';

export interface DispatchRequest {
  head: string;
  /** Build only what changed since it (nx affected). */
  base?: string;
  /** Default: this clone's remote "origin". */
  repository?: string;
  /** Default: planned, at most maxShards. */
  shards?: number;
  maxShards: number;
}

export interface DispatchPlan {
  head: string;
  base?: string;
  repository: string;
  shards: number;
  /** How many tasks the plan was made for (when the shards were planned). */
  tasks?: number;
}

/** Each shard aims at about this much building. */
const SHARD_SECONDS = 20 * 60;

export async function dispatchPlan(root: string, r: DispatchRequest): Promise<DispatchPlan> {
  const head = await resolveRef(root, r.head);
  const base = r.base ? await resolveRef(root, r.base) : undefined;
  const repository = r.repository ?? (await git(root, ['remote', 'get-url', 'origin']).catch(() => '')).trim();
  if (!/^(https?|ssh|git):\/\/|^[\w.-]+@[\w.-]+:/.test(repository)) {
    throw new KmatrixError(
      repository ? `the pods cannot clone "${repository}"` : 'this clone has no remote "origin" for the pods to clone',
      {
        stage: 'dispatch',
        remedy: 'pass --repo with an https:// or ssh URL the cluster can reach',
      },
    );
  }
  const where = { head, repository, ...(base ? { base } : {}) };
  if (r.shards) return { ...where, shards: r.shards };
  const projects = await projectsToRun(root, {
    target: workspacePluginOptions(root).buildTargetName,
    ...(base ? { base, head } : {}),
  });
  const shards = planShards(projects, await loadTimings(timingsFile(root)), {
    maxShards: r.maxShards,
    targetSeconds: SHARD_SECONDS,
  }).total;
  return { ...where, shards, tasks: projects.length };
}
