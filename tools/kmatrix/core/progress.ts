/**
 * Progress of long byte transfers (downloads, image pushes). On a terminal: a live bar with
 * rate and ETA (cli-progress, a well-kept library, drawn on stderr). Elsewhere — CI, Nx task
 * output, a pipe — a plain line at every 10% (every 16 MiB when the size is unknown), so logs
 * stay short and still say the transfer is alive.
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  /** `bytes` more arrived (or left). */
  advance(bytes: number): void;
  /** The transfer ended (successfully or not): the bar is removed, nothing more is printed. */
  done(): void;
}

const MB = 1e6;
const UNKNOWN_STEP = 16 * 1024 * 1024;

/** A terminal a person watches: stderr is a TTY and this is not CI. */
export function interactive(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.stderr.isTTY === true && !env.CI;
}

const mb = (n: number) => (n / MB).toFixed(1);
function rate(bytes: number, since: number): string {
  const s = (Date.now() - since) / 1000;
  return s > 0 ? `${mb(bytes / s)} MB/s` : '…';
}

/** Bars drawn now: one at a time on a terminal; parallel transfers print lines instead of garbling it. */
let barsDrawn = 0;

/** Lines at every 10% (or 16 MiB): for logs. `already`: bytes a resumed transfer had before (not in the rate). */
function lineProgress(
  label: string,
  total: number | undefined,
  log: (line: string) => void,
  already: number,
): Progress {
  const start = Date.now();
  let seen = already;
  let reported = total ? Math.floor((already / total) * 10) : Math.floor(already / UNKNOWN_STEP);
  return {
    advance(bytes) {
      seen += bytes;
      const step = total ? Math.floor((seen / total) * 10) : Math.floor(seen / UNKNOWN_STEP);
      if (step <= reported || (total && seen >= total)) return;
      reported = step;
      const now = seen - already;
      const left = total ? ((total - seen) / Math.max(now, 1)) * ((Date.now() - start) / 1000) : undefined;
      log(
        total
          ? `  ${label}: ${step * 10}% (${mb(seen)} of ${mb(total)} MB, ${rate(now, start)}, ${Math.ceil(left!)} s left)`
          : `  ${label}: ${mb(seen)} MB (${rate(now, start)})`,
      );
    },
    done() {},
  };
}

function barProgress(label: string, total: number, already: number): Progress {
  const start = Date.now();
  let seen = already;
  barsDrawn++;
  const bar = new SingleBar({
    format: `  ${label} [{bar}] {percentage}% | {done}/{all} MB | {rate} | ETA {eta_formatted}`,
    stream: process.stderr,
    clearOnComplete: true,
    hideCursor: true,
    etaBuffer: 50,
  });
  bar.start(total, already, { done: mb(already), all: mb(total), rate: '…' });
  let stopped = false;
  return {
    advance(bytes) {
      seen += bytes;
      bar.update(Math.min(seen, total), { done: mb(seen), rate: rate(seen - already, start) });
    },
    done() {
      if (stopped) return;
      stopped = true;
      bar.stop();
      barsDrawn--;
    },
  };
}

/**
 * Progress of a transfer of `total` bytes (undefined: not known), shown as this output allows;
 * `already`: what a resumed transfer had (shown, not counted in the rate).
 */
export function byteProgress(
  label: string,
  total: number | undefined,
  log: (line: string) => void,
  tty: boolean = interactive(),
  already = 0,
): Progress {
  return tty && total && barsDrawn === 0
    ? barProgress(label, total, already)
    : lineProgress(label, total, log, already);
}
