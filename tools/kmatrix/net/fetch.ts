/**
 * HTTP GET with retries: network errors and 5xx are retried with exponential backoff; other
 * statuses are final. A 404 is reported as such, never read as "empty".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KmatrixError, type Stage } from '../errors.ts';

export interface RetryOptions {
  attempts?: number;
  /** First backoff in ms; doubles each retry. */
  backoffMs?: number;
  stage: Stage;
  onRetry?: (attempt: number, reason: string) => void;
}

export class HttpStatusError extends Error {
  readonly status: number;
  constructor(url: string, status: number) {
    super(`GET ${url} answered HTTP ${status}`);
    this.status = status;
  }
}

function retriable(error: unknown): boolean {
  if (error instanceof HttpStatusError) return error.status >= 500 || error.status === 429;
  return true; // DNS, reset, timeout, truncated body: worth another try
}

/** Runs `attempt` until it succeeds or retries run out; `attempt` may throw HttpStatusError. */
export async function withRetries<T>(what: string, options: RetryOptions, attempt: () => Promise<T>): Promise<T> {
  const attempts = options.attempts ?? 4;
  let backoff = options.backoffMs ?? 500;
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (error instanceof KmatrixError) throw error;
      if (i >= attempts || !retriable(error)) {
        throw new KmatrixError(`${what} failed after ${i} attempt${i === 1 ? '' : 's'}: ${(error as Error).message}`, {
          stage: options.stage,
          cause: error,
          remedy:
            error instanceof HttpStatusError && error.status === 404
              ? 'the archive no longer has this file: re-run `npx kmatrix crawl debian` and `npx kmatrix gen`'
              : 'check the network path to the Debian mirror (see /etc/apt/sources.list.d/) and try again',
        });
      }
      options.onRetry?.(i, (error as Error).message);
      await sleep(backoff);
      backoff *= 2;
    }
  }
}

export async function fetchBytes(url: string, options: RetryOptions): Promise<Buffer> {
  return withRetries(`download of ${url}`, options, async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
    if (!response.ok) throw new HttpStatusError(url, response.status);
    return Buffer.from(await response.arrayBuffer());
  });
}
