/**
 * `kmatrix reproduce --shell`: the exact build container of a target (its image by digest, the
 * headers mounted read-only, a copy of the driver's sources, the build's sandbox and environment),
 * opened interactively or running a given command.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { openBuild } from './execute.ts';
import { makeCommand, prepareContainer } from './run.ts';
import { sandboxRunFlags } from './sandbox.ts';

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
    const src = join(scratch, 'src');
    await cp(join(root, opened.target.driver.path), src, { recursive: true });
    const prepared = await prepareContainer(opened);
    const container = await prepared.container(src);
    if (prepared.compiler.note) log(prepared.compiler.note);
    const argv = command ?? ['bash'];
    const tty = process.stdin.isTTY && !command;
    log(`opening ${container.image} for ${opened.target.name} (sources: a copy in ${relative(root, src)})`);
    const r = await execa(
      'docker',
      [
        'run',
        '--rm',
        tty ? '-it' : '-i',
        ...sandboxRunFlags(container.limits),
        '--workdir',
        container.workdir,
        ...Object.entries({ ...container.env, KMATRIX_MAKE: makeCommand(opened.target).join(' ') }).flatMap(
          ([k, v]) => ['--env', `${k}=${v}`],
        ),
        ...container.binds.flatMap((b) => ['--volume', `${b.host}:${b.container}:${b.readOnly ? 'ro' : 'rw'}`]),
        container.image,
        ...argv,
      ],
      { stdio: 'inherit', reject: false },
    );
    return r.exitCode ?? 1;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
