/**
 * `kmatrix reproduce --shell`: the exact build container of a target (its recipe: the image by
 * digest, the headers mounted read-only, a copy of the driver's sources, the sandbox and the
 * environment), opened interactively or running a given command.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { openBuild } from './execute.ts';
import { prepareContainer } from './prepare.ts';
import { dockerRunFlags } from '../recipe/container.ts';
import { expandScripts } from '../recipe/scripts.ts';

const shellQuote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/** Runs `command` (default: an interactive bash) in the target's build container; its exit code. */
export async function openShell(
  root: string,
  file: string,
  command: string[] | undefined,
  log: (line: string) => void,
): Promise<number> {
  const opened = await openBuild(root, file, log);
  const scratch = await mkdtemp(join(root, '.kmatrix-shell-'));
  try {
    const prepared = await prepareContainer(opened);
    const { options, sourceDir } = await prepared.container(root, scratch);
    if (prepared.compiler.note) log(prepared.compiler.note);
    const argv = command ?? ['bash'];
    const tty = process.stdin.isTTY && !command;
    log(`opening ${options.Image} for ${opened.target.name} (sources: a copy in ${relative(root, sourceDir)})`);
    const r = await execa(
      'docker',
      [
        'run',
        '--rm',
        tty ? '-it' : '-i',
        ...dockerRunFlags(options),
        // The build's own command, each argument shell-quoted, to run by hand: eval "$KMATRIX_MAKE".
        '--env',
        `KMATRIX_MAKE=${expandScripts(opened.target.recipe.argv, opened.target.recipe.scripts).map(shellQuote).join(' ')}`,
        options.Image!,
        ...argv,
      ],
      { stdio: 'inherit', reject: false },
    );
    return r.exitCode ?? 1;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
