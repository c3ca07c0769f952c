/**
 * One error type for everything a user can cause or fix. The CLI (and the Nx executor) is the
 * only place that turns it into text and an exit code; library code throws and never exits.
 */
export type Stage =
  | 'policy'
  | 'kernel-list'
  | 'target'
  | 'crawl'
  | 'gen'
  | 'diff'
  | 'cache'
  | 'toolchain'
  | 'docker'
  | 'headers'
  | 'build'
  | 'boot'
  | 'publish'
  | 'verify'
  | 'shard'
  | 'dispatch'
  | 'request'
  | 'workspace'
  | 'usage';

export interface KmatrixErrorOptions {
  stage: Stage;
  /** What the user can do about it, one sentence. */
  remedy?: string;
  /** Individual problems (e.g. one per invalid field), printed one per line. */
  problems?: string[];
  cause?: unknown;
  /** Which target the error is about, when there is one. */
  target?: string;
}

export class KmatrixError extends Error {
  readonly stage: Stage;
  readonly remedy?: string;
  readonly problems: string[];
  readonly target?: string;

  constructor(message: string, options: KmatrixErrorOptions) {
    super(message, { cause: options.cause });
    this.name = 'KmatrixError';
    this.stage = options.stage;
    this.remedy = options.remedy;
    this.problems = options.problems ?? [];
    this.target = options.target;
  }
}

/** The text a user sees for any error; built in one place so every command reads alike. */
export function renderError(error: unknown): string {
  if (error instanceof KmatrixError) {
    const lines = [`kmatrix: ${error.target ? `${error.target}: ` : ''}${error.message}`];
    for (const problem of error.problems) lines.push(`  - ${problem}`);
    if (error.remedy) lines.push(`  → ${error.remedy}`);
    return lines.join('\n');
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `kmatrix: unexpected error (please report it):\n${text}`;
}
