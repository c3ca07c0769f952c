/**
 * `kmatrix reproduce --verify`: the build to compare a local rebuild with (the newest cache entry
 * of the target, local or remote, else its output in dist/), and what differs between the two.
 */
import { join, relative } from 'node:path';
import { outputDir } from '../compile/execute.ts';
import { BUILD_RECORD, readBuildRecord, type BuildRecord } from '../model/build-record.ts';
import type { Target } from '../model/target.ts';
import { localEntries, localRecord, newestOf, remoteEntries, remoteFromEnv, remoteRecord } from './entries.ts';
import { compareInputs, type Difference } from './explain.ts';

/** The reference build of a target, and where it was found. */
export async function referenceBuild(
  root: string,
  target: Target,
  remote: boolean,
): Promise<{ from: string; record: BuildRecord } | undefined> {
  if (remote) {
    const server = remoteFromEnv(process.env);
    const entry = newestOf(await remoteEntries(server), target.name);
    const record = entry && (await remoteRecord(server, entry.hash));
    return record && { from: `the cache server's entry ${entry.hash}`, record };
  }
  const { cacheDir } = await import('@nx/devkit');
  const entry = newestOf(await localEntries(cacheDir), target.name);
  const record = entry && (await localRecord(cacheDir, entry.hash));
  if (record) return { from: `the local Nx cache entry ${entry.hash}`, record };
  const built = await readBuildRecord(outputDir(root, target));
  return built ? { from: relative(root, join(outputDir(root, target), BUILD_RECORD)), record: built } : undefined;
}

/** Module by module, and when the modules differ, input by input. */
export function compareBuilds(mine: BuildRecord, theirs: BuildRecord): { differences: string[]; inputs: Difference[] } {
  const differences: string[] = [];
  for (const m of mine.outputs) {
    const other = theirs.outputs.find((o) => o.file === m.file);
    if (!other) differences.push(`${m.file}: not in the reference`);
    else if (other.sha256 !== m.sha256)
      differences.push(
        `${m.file}: sha256 ${m.sha256} here, ${other.sha256} in the reference (${m.size} vs ${other.size} bytes)`,
      );
  }
  return { differences, inputs: differences.length > 0 ? compareInputs(theirs.inputs, mine.inputs) : [] };
}
