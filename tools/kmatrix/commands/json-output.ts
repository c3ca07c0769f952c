/**
 * What `--json` prints: one document on stdout, the same shape for every command, so a script
 * reads any command's answer one way (README "Scripting"):
 *
 *   {"kmatrix": "0.1.0", "command": "verify", "ok": true,  "exitCode": 0, "result": {…}}
 *   {"kmatrix": "0.1.0", "command": "gen",    "ok": false, "exitCode": 1,
 *    "error": {"message": "…", "stage": "policy", "remedy": "…", "problems": ["…"]}}
 *
 * `ok` is `exitCode === 0`. `result` is the command's own data (present when it got that far; a
 * failed verification has both a result and exit code 1); `error` is present when the command
 * stopped on an error. What people read goes to stderr meanwhile.
 */
import { KmatrixError } from '../core/errors.ts';
import { KMATRIX_VERSION } from '../core/version.ts';

export interface CommandOutput {
  /** --json was given: stdout carries one JSON document only. */
  readonly json: boolean;
  /** A line for people: stdout, or stderr under --json. */
  print(line: string): void;
  /** The command's data for --json. */
  result(data: unknown): void;
}

export interface JsonError {
  message: string;
  stage: string;
  remedy?: string;
  problems?: string[];
  target?: string;
}

export interface JsonDocument {
  kmatrix: string;
  command: string;
  ok: boolean;
  exitCode: number;
  result?: unknown;
  error?: JsonError;
}

export function jsonError(error: unknown): JsonError {
  if (error instanceof KmatrixError)
    return {
      message: error.message,
      stage: error.stage,
      ...(error.remedy ? { remedy: error.remedy } : {}),
      ...(error.problems.length ? { problems: error.problems } : {}),
      ...(error.target ? { target: error.target } : {}),
    };
  return { message: error instanceof Error ? error.message : String(error), stage: 'internal' };
}

/** An output for one run of `command`; `finish` writes the document (under --json). */
export function commandOutput(command: string, json: boolean) {
  let data: unknown;
  const output: CommandOutput = {
    json,
    print: (line) => (json ? process.stderr : process.stdout).write(`${line}\n`),
    result: (value) => {
      data = value;
    },
  };
  const finish = (exitCode: number, error?: unknown) => {
    if (!json) return;
    const doc: JsonDocument = {
      kmatrix: KMATRIX_VERSION,
      command,
      ok: exitCode === 0,
      exitCode,
      ...(data === undefined ? {} : { result: data }),
      ...(error === undefined ? {} : { error: jsonError(error) }),
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  };
  return { output, finish };
}
