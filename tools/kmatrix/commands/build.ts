import { dirname, join, relative, resolve, sep } from 'node:path';
import { buildAndRecord, buildFromTargetFile, targetFileFor, isTargetFilePath } from '../compile/execute.ts';
import { KmatrixError } from '../core/errors.ts';
import { defineCommand, log } from './command.ts';

const about = `Builds one target outside Nx (no cache), exactly as the build-driver task does: the
same toolchain image by digest, the same header packages by SHA256, the same flags.
TARGET is a project name (driver--distro--kernelrelease--arch, see \`npx nx show
projects\`) or a path to a target.json. Prints the sha256 of each module built.
`;

export const buildCommand = defineCommand({
  name: 'build',
  summary: 'build one target directly (what the Nx build-driver task runs)',
  args: 'TARGET',
  about,
  json: true,
  pathPositional: isTargetFilePath,
  options: {
    out: {
      type: 'string',
      path: true,
      value: 'DIR',
      help: 'output folder (default: dist/targets/<driver>/<distro>/<kernelrelease>/<arch>)',
    },
  },
  async run({ values, positionals }, _, out) {
    if (positionals.length !== 1) {
      throw new KmatrixError('build takes exactly one TARGET', {
        stage: 'usage',
        remedy: 'see `npx kmatrix build --help`',
      });
    }
    const root = resolve('.');
    const file = resolve(targetFileFor(root, positionals[0]!));
    // A target of targets/ built into its own output folder: the result is its latest (`kmatrix report`).
    const place = relative(join(root, 'targets'), dirname(file)).split(sep);
    const own = !values.out && place.length === 4 && !place.includes('..');
    const { outDir, result } = own
      ? await buildAndRecord(root, place.join('--'), { log })
      : await buildFromTargetFile(root, file, { outDir: values.out ? resolve(values.out) : undefined, log });
    for (const m of result.modules) out.print(`${m.sha256}  ${relative(root, `${outDir}/${m.file}`)}`);
    if (result.skipped) log(`skipped: ${result.skipped}`);
    out.result({
      target: own ? place.join('--') : file,
      outDir: relative(root, outDir),
      modules: result.modules.map((m) => ({ file: relative(root, `${outDir}/${m.file}`), sha256: m.sha256 })),
      ...(result.skipped ? { skipped: result.skipped } : {}),
    });
    return 0;
  },
});
