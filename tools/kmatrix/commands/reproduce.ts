import { cp, mkdtemp, rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { buildFromTargetFile, openBuild, outputDir, targetFileFor } from '../compile/execute.ts';
import { makeCommand, prepareContainer } from '../compile/run.ts';
import { localEntries, localRecord, newestOf, remoteEntries, remoteFromEnv, remoteRecord } from '../cache/entries.ts';
import { BUILD_RECORD, readBuildRecord, type BuildRecord } from '../model/build-record.ts';
import { compareInputs } from '../cache/explain.ts';
import { KmatrixError } from '../core/errors.ts';
import type { Target } from '../model/target.ts';
import { defineCommand, log } from './command.ts';

const about = `
Rebuilds one target on this machine exactly as CI does — the same toolchain image by digest,
the same header packages by SHA256, the same make arguments, KCFLAGS and environment, through
the same build code as the Nx build-driver task — into a local folder, and prints the sha256 of
each module. TARGET is a project name (driver--distro--kernelrelease--arch) or
driver/distro/kernelrelease/arch.
`;

async function reference(
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

export const reproduceCommand = defineCommand({
  name: 'reproduce',
  summary: 'rebuild one target locally, byte for byte as CI, and verify it',
  args: 'TARGET',
  about,
  passThrough: true,
  options: {
    out: { type: 'string', value: 'DIR', help: 'where to put the result (default: reproduce/<project name>)' },
    verify: {
      type: 'boolean',
      default: false,
      help: `compare with the cached build of the target (the newest entry of the local Nx
        cache, or of the cache server with --remote; else dist/): prints "identical", or
        what differs — module digests and, when the inputs differ, which input. Exit 1 on a
        difference.`,
    },
    remote: {
      type: 'boolean',
      default: false,
      help: `with --verify: compare with the cache server the nx client uses
        (NX_SELF_HOSTED_REMOTE_CACHE_SERVER, NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN)`,
    },
    shell: {
      type: 'boolean',
      default: false,
      help: `open the exact build container instead (headers and a copy of the driver's sources
        mounted, same user, environment, network none); with -- COMMAND, run that instead
        of an interactive shell. The make command the build runs is in $KMATRIX_MAKE.`,
    },
  },
  async run({ values, positionals }, afterDashes) {
    if (positionals.length !== 1)
      throw new KmatrixError('reproduce takes exactly one TARGET', {
        stage: 'usage',
        remedy: 'see `npx kmatrix reproduce --help`',
      });
    const root = resolve('.');
    const file = targetFileFor(root, positionals[0]!);

    if (values.shell) {
      const opened = await openBuild(root, file, log);
      const scratch = await mkdtemp(join(root, '.kmatrix-shell-'));
      try {
        const src = join(scratch, 'src');
        await cp(join(root, opened.target.driver.path), src, { recursive: true });
        const prepared = await prepareContainer(opened);
        const { compilerNote } = prepared;
        const container = await prepared.container(src);
        if (compilerNote) log(compilerNote);
        const command = afterDashes ?? ['bash'];
        const tty = process.stdin.isTTY && !afterDashes;
        log(`opening ${container.image} for ${opened.target.name} (sources: a copy in ${relative(root, src)})`);
        const r = await execa(
          'docker',
          [
            'run',
            '--rm',
            tty ? '-it' : '-i',
            '--network',
            'none',
            '--user',
            container.user,
            '--workdir',
            container.workdir,
            ...Object.entries({ ...container.env, KMATRIX_MAKE: makeCommand(opened.target).join(' ') }).flatMap(
              ([k, v]) => ['--env', `${k}=${v}`],
            ),
            ...container.binds.flatMap((b) => ['--volume', `${b.host}:${b.container}:${b.readOnly ? 'ro' : 'rw'}`]),
            container.image,
            ...command,
          ],
          { stdio: 'inherit', reject: false },
        );
        return r.exitCode ?? 1;
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }

    const { target, outDir, result } = await buildFromTargetFile(root, file, {
      outDir: resolve(values.out ?? join('reproduce', file.split('/').slice(-5, -1).join('--'))),
      log,
    });
    for (const m of result.modules) process.stdout.write(`${m.sha256}  ${relative(root, join(outDir, m.file))}\n`);
    if (!values.verify) return 0;

    const ref = await reference(root, target, values.remote);
    if (!ref) {
      throw new KmatrixError(`nothing to verify against: no cached or published build of ${target.name}`, {
        stage: 'cache',
        remedy: values.remote
          ? 'check the server has it: `npx kmatrix cache ls --remote`'
          : 'build it once with nx (`npx nx run <project>:build-driver`), or use --remote',
      });
    }
    const mine = await readBuildRecord(outDir);
    if (!mine)
      throw new KmatrixError(`the rebuild left no ${BUILD_RECORD} in ${outDir}`, {
        stage: 'build',
        target: target.name,
      });
    const differences: string[] = [];
    for (const m of mine.outputs) {
      const theirs = ref.record.outputs.find((o) => o.file === m.file);
      if (!theirs) differences.push(`${m.file}: not in the reference`);
      else if (theirs.sha256 !== m.sha256)
        differences.push(
          `${m.file}: sha256 ${m.sha256} here, ${theirs.sha256} in the reference (${m.size} vs ${theirs.size} bytes)`,
        );
    }
    if (differences.length === 0) {
      process.stdout.write(`identical to ${ref.from}\n`);
      return 0;
    }
    process.stdout.write(`differs from ${ref.from}:\n${differences.map((d) => `  ${d}`).join('\n')}\n`);
    const inputs = compareInputs(ref.record.inputs, mine.inputs);
    if (inputs.length > 0) for (const d of inputs) process.stdout.write(`  input ${d.input}: ${d.detail}\n`);
    else
      process.stdout.write(
        '  the recorded inputs are the same: the build is not reproducible (compare the two .ko files with diffoscope)\n',
      );
    return 1;
  },
});
