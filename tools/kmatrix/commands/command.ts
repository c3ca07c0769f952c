/**
 * The shape every CLI command shares. A command declares its options once, in a table: that table
 * is what parses the arguments and what renders the usage line and the options of `--help`, so
 * the help cannot name an option the command does not take, or miss one it does.
 * `--help` is answered by the dispatcher (cli.ts) from `help`, before a command parses anything.
 */
import { parseArgs } from 'node:util';
import { KmatrixError } from '../core/errors.ts';
import { userPath } from '../core/workspace-root.ts';
import { type CommandOutput, commandOutput } from './json-output.ts';

export interface Command {
  name: string;
  summary: string;
  /** Full --help text. */
  help: string;
  /** `invokedIn`: the folder the user typed the command in (the CLI runs it from the workspace root). */
  run(argv: string[], invokedIn?: string): Promise<number>;
  /** false: runs where it was typed, not from an enclosing workspace's root (init makes a workspace). */
  atWorkspaceRoot?: boolean;
}

/** One option: how parseArgs reads it, and how the help shows it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[];
  /** The value's name in the help (string options), e.g. FILE. */
  value?: string;
  /** The command cannot run without it (a boolean: without it set); shown without brackets, checked before `run`. */
  required?: boolean;
  /** A file or folder the user names: read relative to the folder the command was typed in. */
  path?: boolean;
  /** What it does; may span lines (each continued line is indented under the first). */
  help: string;
}

type Options = Record<string, OptionSpec>;
type Config<O extends Options> = {
  options: O;
  allowPositionals: boolean;
  strict: true;
  allowNegative: true;
  args: string[];
};
export type Parsed<O extends Options> = ReturnType<typeof parseArgs<Config<O>>>;

export interface CommandSpec<O extends Options> {
  name: string;
  summary: string;
  /** What the usage line shows before the options: subcommands and positionals, e.g. "build NAME" (none: none are taken). */
  args?: string;
  /** The prose of `--help`, between the usage line and the options. */
  about: string;
  options: O;
  /** Arguments after `--` go to `run` untouched (a command to run), or undefined without `--`. */
  passThrough?: boolean;
  /** Which positionals are paths, read relative to where the command was typed (default: none). */
  pathPositional?: (typed: string, index: number) => boolean;
  /** The command answers `--json` (json-output.ts): it hands its data to `out.result`. */
  json?: boolean;
  /** See Command.atWorkspaceRoot. */
  atWorkspaceRoot?: boolean;
  run(parsed: Parsed<O>, afterDashes: string[] | undefined, out: CommandOutput): Promise<number>;
}

const JSON_OPTION = {
  type: 'boolean',
  default: false,
  help: 'print one JSON document on stdout (its shape: README "Scripting"); progress stays on stderr',
} as const satisfies OptionSpec;

const LEFT = 2;
const LONG = 22;
const USAGE_WIDTH = 100;

function flag(name: string, o: OptionSpec): string {
  // A boolean that defaults to true is turned off with --no-NAME (parseArgs' allowNegative).
  const long = o.type === 'boolean' && o.default === true ? `--no-${name}` : `--${name}`;
  return o.type === 'string' ? `${long} ${o.value ?? 'VALUE'}` : long;
}

export function usageLine(spec: Pick<CommandSpec<Options>, 'name' | 'args' | 'options' | 'passThrough'>): string {
  const options = Object.entries(spec.options).map(([name, o]) => {
    const shown = o.required ? flag(name, o) : `[${flag(name, o)}]`;
    return `${shown}${o.multiple ? '…' : ''}`;
  });
  const rest = spec.passThrough ? ['[-- COMMAND…]'] : [];
  const head = `Usage: npx kmatrix ${spec.name}${spec.args ? ` ${spec.args}` : ''}`;
  // Wrapped under the command's name, so a command with many options stays readable.
  const lines = [head];
  for (const word of [...options, ...rest]) {
    if (lines.at(-1)!.length + 1 + word.length > USAGE_WIDTH)
      lines.push(' '.repeat(`Usage: npx kmatrix ${spec.name}`.length));
    lines[lines.length - 1] += ` ${word}`;
  }
  return lines.join('\n');
}

export function optionsHelp(options: Options): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const shown = o.short ? `-${o.short}, ${flag(name, o)}` : flag(name, o);
    const fallback = typeof o.default === 'string' && !/\bdefault\b/.test(o.help) ? ` (default: ${o.default})` : '';
    return [shown, `${o.help}${fallback}`] as const;
  });
  rows.push(['-h, --help', 'show this help']);
  // A long option (--only DISTRO/KERNELRELEASE/ARCH) gets a line of its own rather than widening the column.
  const width = Math.max(...rows.map(([left]) => left.length).filter((n) => n <= LONG)) + 2;
  const pad = ' '.repeat(LEFT + width);
  const lines = rows.flatMap(([left, text]) => {
    const [first, ...rest] = text.split('\n').map((l) => l.trim());
    const head =
      left.length <= LONG
        ? [`${' '.repeat(LEFT)}${left.padEnd(width)}${first}`]
        : [`${' '.repeat(LEFT)}${left}`, `${pad}${first}`];
    return [...head, ...rest.map((l) => `${pad}${l}`)];
  });
  return `Options:\n${lines.join('\n')}\n`;
}

export function parse<O extends Options>(
  command: string,
  argv: string[],
  options: O,
  allowPositionals: boolean,
): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, allowNegative: true, strict: true });
  } catch (error) {
    throw new KmatrixError((error as Error).message, {
      stage: 'usage',
      remedy: `see \`npx kmatrix ${command} --help\``,
    });
  }
}

/** The required options a parse left unset, as a usage error naming the first. */
function checkRequired(command: string, options: Options, values: Record<string, unknown>): void {
  for (const [name, o] of Object.entries(options)) {
    if (!o.required || (o.type === 'boolean' ? values[name] === true : values[name] !== undefined)) continue;
    throw new KmatrixError(`${flag(name, o)} is required`, {
      stage: 'usage',
      remedy: `${flag(name, o)}: ${o.help.replace(/\s*\n\s*/g, ' ')} (see \`npx kmatrix ${command} --help\`)`,
    });
  }
}

/** Whether the user typed the option (not its default): --name, --name=…, or its short form. */
function typed(argv: readonly string[], name: string, o: OptionSpec): boolean {
  return argv.some(
    (a) => a === `--${name}` || a.startsWith(`--${name}=`) || (o.short !== undefined && a.startsWith(`-${o.short}`)),
  );
}

/** Paths the user typed (options marked `path`, and positionals the command says are paths), made absolute against where they typed them. */
function resolveUserPaths(
  spec: CommandSpec<Options>,
  parsed: Parsed<Options>,
  argv: readonly string[],
  invokedIn: string,
): void {
  // Typed at the workspace root (or outside one), a path is already where the command runs, and
  // stays as typed in messages; typed in a subfolder, it is made absolute.
  if (invokedIn === process.cwd()) return;
  const values = parsed.values as Record<string, unknown>;
  for (const [name, o] of Object.entries(spec.options)) {
    const v = values[name];
    if (!o.path || v === undefined || !typed(argv, name, o)) continue;
    values[name] = Array.isArray(v) ? v.map((x: string) => userPath(x, invokedIn)) : userPath(v as string, invokedIn);
  }
  const isPath = spec.pathPositional;
  parsed.positionals.forEach((positional, i) => {
    if (isPath?.(positional, i)) parsed.positionals[i] = userPath(positional, invokedIn);
  });
}

/** A command from its spec: the help is rendered from the same option table that parses. */
export function defineCommand<O extends Options>(input: CommandSpec<O>): Command {
  const spec = input.json ? { ...input, options: { ...input.options, json: JSON_OPTION } } : input;
  return {
    name: spec.name,
    summary: spec.summary,
    ...(spec.atWorkspaceRoot === false ? { atWorkspaceRoot: false } : {}),
    help: `${usageLine(spec)}\n\n${spec.about.trim()}\n\n${optionsHelp(spec.options)}`,
    run: async (argv, invokedIn = process.cwd()) => {
      const dash = spec.passThrough ? argv.indexOf('--') : -1;
      const own = dash >= 0 ? argv.slice(0, dash) : argv;
      // Only commands that take part (spec.json); others may have a --json of their own (diff,
      // report). Known before parsing, so a usage error is a document too.
      const json = input.json === true && own.includes('--json');
      const { output, finish } = commandOutput(spec.name, json);
      try {
        const parsed = parse(spec.name, own, spec.options, spec.args !== undefined);
        checkRequired(spec.name, spec.options, parsed.values);
        resolveUserPaths(spec as CommandSpec<Options>, parsed as Parsed<Options>, own, invokedIn);
        const code = await spec.run(parsed as Parsed<O>, dash >= 0 ? argv.slice(dash + 1) : undefined, output);
        finish(code);
        return code;
      } catch (error) {
        finish(error instanceof KmatrixError && error.stage === 'usage' ? 2 : 1, error);
        throw error;
      }
    },
  };
}

/** An option that counts something (shards, minutes): a whole number ≥ 1, or the fallback when absent. */
export function wholeNumber(command: string, option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(text))
    throw new KmatrixError(`${option} must be a whole number ≥ 1, not "${text}"`, {
      stage: 'usage',
      remedy: `see \`npx kmatrix ${command} --help\``,
    });
  return Number(text);
}

/** Progress and diagnostics go to stderr so stdout stays machine-readable. */
export const log = (line: string) => process.stderr.write(`${line}\n`);
