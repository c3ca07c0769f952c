/**
 * A build's output as it arrives: every line goes to the log file, and only bounded parts stay in
 * memory — the first lines (where dkms-build.sh prints what dkms.conf evaluated to, before any
 * driver code runs), the first error lines, and a tail. A build that prints gigabytes costs the
 * host disk up to a cap, never memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

/** Kept from the start, at most (lines and bytes): dkms-build.sh's prologue is a few dozen lines. */
const HEAD_LINES = 10_000;
const HEAD_BYTES = 1024 * 1024;
const TAIL_LINES = 200;
const ERROR_LINES = 5;
/** Past this the log file says it was cut, and only the in-memory tail follows at the end. */
const LOG_FILE_BYTES = 256 * 1024 * 1024;
/** Written to the file in blocks: one write(2) per line would make a chatty build slow. */
const FLUSH_BYTES = 64 * 1024;
/** Shown on the terminal (and so in Nx's task output) up to this much; the rest is in the log file. */
const SHOWN_BYTES = 8 * 1024 * 1024;

const ERROR_LINE = /\berror\b|Error \d+|\*\*\*/;

export class BuildOutput {
  readonly head: string[] = [];
  private readonly tailRing: string[] = [];
  private readonly errors: string[] = [];
  private readonly fd: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  private written = 0;
  private cut = false;
  private closed = false;
  private shownBytes = 0;
  private headBytes = 0;
  /** Why the log file could not be written (a full disk), once it could not. */
  writeError: NodeJS.ErrnoException | undefined;

  readonly logFile: string;
  private readonly show: (line: string) => void;

  /** `show` gets each line for the terminal, until SHOWN_BYTES. */
  constructor(logFile: string, show: (line: string) => void) {
    this.logFile = logFile;
    this.show = show;
    this.fd = openSync(logFile, 'w');
  }

  add(line: string): void {
    if (this.head.length < HEAD_LINES && this.headBytes + line.length <= HEAD_BYTES) {
      this.head.push(line);
      this.headBytes += line.length;
    }
    if (this.errors.length < ERROR_LINES && ERROR_LINE.test(line)) this.errors.push(line);
    this.tailRing.push(line);
    if (this.tailRing.length > TAIL_LINES) this.tailRing.shift();
    this.echo(line);
    if (this.cut) return;
    this.pending.push(line);
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  /** What a failure shows: the first error lines, or else the last lines. */
  problems(): string[] {
    return (this.errors.length > 0 ? this.errors : this.tailRing.slice(-5)).slice(0, ERROR_LINES);
  }

  /** Idempotent: called when the build ends and again on the way out of any failure. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    if (this.cut) {
      this.write(
        `[kmatrix: the log was cut at ${LOG_FILE_BYTES} bytes; its last lines:]\n${this.tailRing.join('\n')}\n`,
      );
    }
    closeSync(this.fd);
  }

  private echo(line: string): void {
    if (this.shownBytes > SHOWN_BYTES) return;
    this.shownBytes += line.length + 1;
    if (this.shownBytes > SHOWN_BYTES)
      this.show(`[kmatrix: more output than ${SHOWN_BYTES} bytes; the rest is only in the build log]`);
    else this.show(line);
  }

  /** A failed write (a full disk) is kept for the build to report, not thrown into Docker's stream. */
  private write(text: string): void {
    if (this.writeError) return;
    try {
      writeSync(this.fd, text);
    } catch (error) {
      this.writeError = error as NodeJS.ErrnoException;
    }
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.pendingBytes = 0;
    const bytes = Buffer.byteLength(text);
    if (this.written + bytes > LOG_FILE_BYTES) {
      this.cut = true;
      return;
    }
    this.write(text);
    this.written += bytes;
  }
}
