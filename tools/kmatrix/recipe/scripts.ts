/**
 * The scripts kmatrix injects into build containers, with their SHA256. A recipe names each script
 * it runs by digest, so a changed script changes the recipes of exactly the builds that run it.
 */
import { readFileSync } from 'node:fs';
import { sha256 } from '../core/hash.ts';
import { KmatrixError } from '../core/errors.ts';

/**
 * A dead man's switch around the command. The executor holds the container's stdin open through
 * its attach connection; if the executor dies in any way (Ctrl-C on nx, SIGKILL, a crashed
 * runner) the kernel closes that connection, Docker closes stdin (StdinOnce), `cat` returns and
 * everything in the container is killed — no kill request from a dying process needed.
 * The command itself gets /dev/null as stdin and its arguments are passed as "$@", never
 * interpolated into the script.
 */
const WATCHDOG = [
  'exec 3<&0',
  '"$@" </dev/null 3<&- & child=$!',
  '{ cat <&3 >/dev/null; echo "kmatrix: the build\'s client went away; stopping the build" >&2; kill -KILL -1; } &',
  'exec 3<&-',
  'wait "$child"',
].join('\n');

/** Evaluates dkms.conf for a kernel and builds a DKMS source tree the way DKMS does (compile/dkms.ts reads its output). */
const DKMS_BUILD = readFileSync(new URL('./dkms-build.sh', import.meta.url), 'utf8');

export const SCRIPTS = { watchdog: WATCHDOG, 'dkms-build': DKMS_BUILD } as const;
export type ScriptName = keyof typeof SCRIPTS;

/** How a recipe's argv names a script's text. */
export const scriptRef = (name: ScriptName) => `@script:${name}`;

export const scriptDigest = (name: ScriptName) => sha256(SCRIPTS[name]);

/** The script a `@script:` argument names (checked by the caller), or undefined for an ordinary argument. */
export const scriptOf = (arg: string): string | undefined =>
  arg.startsWith('@script:') ? arg.slice('@script:'.length) : undefined;

const isScript = (name: string): name is ScriptName => Object.hasOwn(SCRIPTS, name);

/**
 * The command with every `@script:` reference replaced by the script's text. With `digests` (a
 * recipe's), each script must be one this kmatrix has, with that SHA256: the text that runs is
 * the one the recipe — the cache key — names.
 */
export function expandScripts(argv: readonly string[], digests?: Record<string, string>): string[] {
  return argv.map((a) => {
    const name = scriptOf(a);
    if (name === undefined) return a;
    if (!isScript(name) || (digests && digests[name] !== scriptDigest(name))) {
      throw new KmatrixError(
        isScript(name)
          ? `the recipe names script ${name} with sha256 ${digests![name] ?? '(none)'}; this kmatrix's has ${scriptDigest(name)}`
          : `the recipe names a script "${name}" this kmatrix does not have`,
        { stage: 'target', remedy: 'run `npx kmatrix gen` to render the recipes with this version of kmatrix' },
      );
    }
    return SCRIPTS[name];
  });
}
