/**
 * What a cache holds, for `kmatrix cache`: entries of the local Nx cache (one folder per task
 * hash, holding the task's outputs) and of a kmatrix cache server (its listing, and each entry's
 * gzipped tar). Our outputs carry build.json — the inputs and the module digests of the build —
 * which is what `show` and `explain` read.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { KmatrixError } from '../core/errors.ts';
import { tarMembers } from './archive.ts';

import { buildRecordSchema, type BuildRecord } from '../model/build-record.ts';

export interface Entry {
  hash: string;
  target?: string;
  size: number;
  /** ISO time the entry was written */
  createdAt: string;
  writer: string;
  where: 'local' | 'remote';
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

async function findBuildJson(dir: string): Promise<string | undefined> {
  const files = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const hit = files.find((f) => /(^|\/)dist\/targets\/[^/]+\/[^/]+\/[^/]+\/[^/]+\/build\.json$/.test(f));
  return hit && join(dir, hit);
}

/** The most recently written entry of a target. */
export function newestOf(entries: Entry[], target: string): Entry | undefined {
  return entries.filter((e) => e.target === target).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
}

export async function localEntries(cacheDir: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const dir = join(cacheDir, name);
    const record = await localRecord(cacheDir, name);
    out.push({
      hash: name,
      target: record?.target,
      size: await duBytes(dir),
      createdAt: (await stat(dir)).mtime.toISOString(),
      writer: 'this machine',
      where: 'local',
    });
  }
  return out;
}

export async function localRecord(cacheDir: string, hash: string): Promise<BuildRecord | undefined> {
  const file = await findBuildJson(join(cacheDir, hash));
  if (!file) return undefined;
  const parsed = buildRecordSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  return parsed.success ? parsed.data : undefined;
}

export interface Remote {
  url: string;
  token: string;
}

/** The server and token the nx client uses (NX_SELF_HOSTED_REMOTE_CACHE_SERVER / _ACCESS_TOKEN). */
export function remoteFromEnv(env: NodeJS.ProcessEnv): Remote {
  const url = env.NX_SELF_HOSTED_REMOTE_CACHE_SERVER;
  const token = env.NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN;
  if (!url || !token) {
    throw new KmatrixError('--remote needs the cache server the nx client uses', {
      stage: 'cache',
      remedy:
        'set NX_SELF_HOSTED_REMOTE_CACHE_SERVER=http://host:port and NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN=<read token>',
    });
  }
  return { url: url.replace(/\/+$/, ''), token };
}

async function call(remote: Remote, path: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(`${remote.url}${path}`, {
      headers: { authorization: `Bearer ${remote.token}` },
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new KmatrixError(
      `cache server ${remote.url} not reachable: ${(error as Error).cause ?? (error as Error).message}`,
      {
        stage: 'cache',
        remedy: 'start it (`npx kmatrix serve-cache --help`) or fix NX_SELF_HOSTED_REMOTE_CACHE_SERVER',
      },
    );
  }
  if (response.status === 401 || response.status === 403) {
    throw new KmatrixError(`cache server ${remote.url} refused the token (HTTP ${response.status})`, {
      stage: 'cache',
      remedy: 'set NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN to a token the server knows',
    });
  }
  return response;
}

export async function remoteEntries(remote: Remote): Promise<Entry[]> {
  const response = await call(remote, '/v1/kmatrix/objects');
  if (!response.ok)
    throw new KmatrixError(`cache server ${remote.url} answered HTTP ${response.status} to the listing`, {
      stage: 'cache',
      remedy: 'is it a kmatrix cache server (`kmatrix serve-cache`)?',
    });
  const objects = (await response.json()) as {
    hash: string;
    target?: string;
    size: number;
    createdAt: string;
    writer: string;
    namespace: string;
  }[];
  return objects.map((o) => ({
    hash: o.hash,
    target: o.target,
    size: o.size,
    createdAt: o.createdAt,
    writer: `${o.writer} (${o.namespace})`,
    where: 'remote' as const,
  }));
}

/** build.json out of a remote entry's gzipped tar. */
export async function remoteRecord(remote: Remote, hash: string): Promise<BuildRecord | undefined> {
  const response = await call(remote, `/v1/cache/${hash}`);
  if (response.status === 404) return undefined;
  const member = tarMembers(gunzipSync(Buffer.from(await response.arrayBuffer()))).find((m) =>
    /dist\/targets\/.+\/build\.json$/.test(m.path),
  );
  if (!member) return undefined;
  const parsed = buildRecordSchema.safeParse(JSON.parse(member.body.toString('utf8')));
  return parsed.success ? parsed.data : undefined;
}
