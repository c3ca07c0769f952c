/**
 * HTTP GET with retries: network errors and 5xx are retried with exponential backoff; other
 * statuses are final. A 404 is reported as such, never read as "empty".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KmatrixError, type Stage } from './errors.ts';

export interface RetryOptions {
  attempts?: number;
  /** First backoff in ms; doubles each retry. */
  backoffMs?: number;
  stage: Stage;
  onRetry?: (attempt: number, reason: string) => void;
}

/** Retries ran out: how many attempts were made, and the last error as the cause. */
export class RetriesExhausted extends KmatrixError {
  readonly attempts: number;
  constructor(message: string, options: ConstructorParameters<typeof KmatrixError>[1] & { attempts: number }) {
    super(message, options);
    this.attempts = options.attempts;
  }
}

export class HttpStatusError extends Error {
  readonly status: number;
  constructor(url: string, status: number) {
    super(`GET ${url} answered HTTP ${status}`);
    this.status = status;
  }
}

/** The HTTP status a fetch failed with (the error itself, or the cause a failed fetchBytes carries), if any. */
export function httpStatusOf(error: unknown): number | undefined {
  const e = error instanceof HttpStatusError ? error : (error as { cause?: unknown } | undefined)?.cause;
  return e instanceof HttpStatusError ? e.status : undefined;
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
        throw new RetriesExhausted(
          `${what} failed after ${i} attempt${i === 1 ? '' : 's'}: ${(error as Error).message}`,
          {
            stage: options.stage,
            attempts: i,
            cause: error,
            remedy:
              error instanceof HttpStatusError && error.status === 404
                ? 'the archive no longer has this file: re-run `npx kmatrix crawl` and `npx kmatrix gen`'
                : 'check the network path to the mirror or archive and try again',
          },
        );
      }
      options.onRetry?.(i, failureReason(error));
      await sleep(backoff);
      backoff *= 2;
    }
  }
}

/**
 * What went wrong with a request, in a few words a user can act on: the HTTP status, or the
 * network error's code (DNS, a reset, TLS, a timeout), read from the error and its causes.
 */
export function failureReason(error: unknown): string {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof HttpStatusError) return `HTTP ${e.status}`;
    if (e instanceof BodySizeError) return e.message;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return NETWORK_CODES[code] ?? code;
    if ((e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError') return 'no answer in time';
  }
  return (error as Error)?.message ?? String(error);
}

const NETWORK_CODES: Record<string, string> = {
  ENOTFOUND: 'DNS: no such host',
  EAI_AGAIN: 'DNS: lookup failed',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'the body stopped arriving',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: the certificate is for another host',
  CERT_HAS_EXPIRED: 'TLS: the certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: self-signed certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: the certificate cannot be verified',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: self-signed certificate in the chain',
};

/** Another number of bytes arrived than the server, the index or the list said. */
export class BodySizeError extends Error {}

/**
 * A signal for one request that fires when the server goes quiet: nothing for `idleMs` — before
 * the headers, or between two chunks of the body (a mirror that accepts the connection and then
 * says nothing, or stalls mid-body, costs that, not the whole download's budget) — or `totalMs` in
 * all. Call `progress()` when the headers and each chunk arrive, `done()` at the end.
 */
export function requestDeadline(
  idleMs: number,
  totalMs: number,
): { signal: AbortSignal; progress: () => void; done: () => void } {
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const progress = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new DOMException('no answer in time', 'TimeoutError')), idleMs);
    timer.unref();
  };
  progress();
  // AbortSignal.timeout takes whole milliseconds only (ERR_OUT_OF_RANGE otherwise).
  return {
    signal: AbortSignal.any([idle.signal, AbortSignal.timeout(Math.ceil(totalMs))]),
    progress,
    done: () => clearTimeout(timer),
  };
}

export async function fetchBytes(url: string, options: RetryOptions): Promise<Buffer> {
  return withRetries(`download of ${url}`, options, async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
    if (!response.ok) throw new HttpStatusError(url, response.status);
    return Buffer.from(await response.arrayBuffer());
  });
}
