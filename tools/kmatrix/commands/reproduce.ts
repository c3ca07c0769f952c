import { join, relative, resolve } from 'node:path';
import { buildFromTargetFile, targetFileFor, isTargetFilePath } from '../compile/execute.ts';
import { openShell } from '../compile/shell.ts';
import { compareBuilds, referenceBuild } from '../cache/reproduce.ts';
import { BUILD_RECORD, readBuildRecord } from '../model/build-record.ts';
import { KmatrixError } from '../core/errors.ts';
import { defineCommand, log } from './command.ts';

const about = `
Rebuilds one target on this machine exactly as CI does — the same toolchain image by digest,
the same header packages by SHA256, the same make arguments, KCFLAGS and environment, through
the same build code as the Nx build-driver task — into a local folder, and prints the sha256 of
each module. TARGET is a project name (driver--distro--kernelrelease--arch) or
driver/distro/kernelrelease/arch.
`;

export const reproduceCommand = defineCommand({
  name: 'reproduce',
  summary: 'rebuild one target locally, byte for byte as CI, and verify it',
  args: 'TARGET',
  about,
  passThrough: true,
  json: true,
  pathPositional: isTargetFilePath,
  options: {
    out: {
      type: 'string',
      path: true,
      value: 'DIR',
      help: 'where to put the result (default: reproduce/<project name>)',
    },
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
  async run({ values, positionals }, afterDashes, out) {
    if (positionals.length !== 1)
      throw new KmatrixError('reproduce takes exactly one TARGET', {
        stage: 'usage',
        remedy: 'see `npx kmatrix reproduce --help`',
      });
    const root = resolve('.');
    const file = targetFileFor(root, positionals[0]!);

    if (values.shell && out.json)
      throw new KmatrixError('--shell hands the terminal to the container: it has no JSON to print', {
        stage: 'usage',
        remedy: 'drop --json, or drop --shell to rebuild and get the result as JSON',
      });
    if (values.shell) return openShell(root, file, afterDashes, log);

    const { target, outDir, result } = await buildFromTargetFile(root, file, {
      outDir: resolve(values.out ?? join('reproduce', file.split('/').slice(-5, -1).join('--'))),
      log,
    });
    for (const m of result.modules) out.print(`${m.sha256}  ${relative(root, join(outDir, m.file))}`);
    const built = {
      target: target.name,
      outDir: relative(root, outDir),
      modules: result.modules.map((m) => ({ file: relative(root, join(outDir, m.file)), sha256: m.sha256 })),
    };
    out.result(built);
    if (!values.verify) return 0;

    const ref = await referenceBuild(root, target, values.remote);
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
    const { differences, inputs } = compareBuilds(mine, ref.record);
    out.result({ ...built, verify: { against: ref.from, identical: differences.length === 0, differences, inputs } });
    if (differences.length === 0) {
      out.print(`identical to ${ref.from}`);
      return 0;
    }
    out.print(`differs from ${ref.from}:\n${differences.map((d) => `  ${d}`).join('\n')}`);
    if (inputs.length > 0) for (const d of inputs) out.print(`  input ${d.input}: ${d.detail}`);
    else
      out.print(
        '  the recorded inputs are the same: the build is not reproducible (compare the two .ko files with diffoscope)',
      );
    return 1;
  },
});
