/**
 * The shape every CLI command shares, and argument parsing that turns mistakes into usage errors.
 * `--help` is answered by the dispatcher (cli.ts) from `help`, before a command parses anything.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KmatrixError } from '../core/errors.ts';

export interface Command {
  name: string;
  summary: string;
  /** Full --help text. */
  help: string;
  run(argv: string[]): Promise<number>;
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, allowNegative: true, strict: true });
  } catch (error) {
    throw new KmatrixError((error as Error).message, {
      stage: 'usage',
      remedy: `see \`npx kmatrix ${command} --help\``,
    });
  }
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
