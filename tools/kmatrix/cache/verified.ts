/**
 * What the cache server has hashed and found whole: per object key, the store's identity of the
 * bytes it hashed (see StoredObject.identity) and when. Small bodies are also kept in memory,
 * least recently served dropped first within a byte budget, so a hot entry is answered with one
 * stat of the store instead of an open, a read and a close. A kept copy is only ever served while
 * the stored object still has the identity it was hashed under, so a body changed behind the
 * server's back is still read, hashed and refused.
 */
import { ByteBudget } from './byte-budget.ts';

export interface VerifiedLimits {
  /** A verified body is hashed again on the first GET after this long. */
  reverifyMs: number;
  /** Bytes of bodies kept in memory, all together (0: none). */
  memoryBytes: number;
  /** Largest body kept in memory. */
  memoryObjectBytes: number;
}

interface Entry {
  identity: string;
  at: number;
  body?: Buffer;
}

export class Verified {
  private readonly entries = new Map<string, Entry>();
  /** Keys holding a body, least recently served first (a Map keeps insertion order). */
  private readonly kept = new Map<string, number>();
  private held = 0;
  private readonly reading: ByteBudget;
  private readonly limits: VerifiedLimits;

  constructor(limits: VerifiedLimits) {
    this.limits = limits;
    this.reading = new ByteBudget(limits.memoryBytes);
  }

  /** Whether these exact stored bytes were hashed and matched within reverifyMs. */
  isCurrent(key: string, identity: string | undefined): boolean {
    const seen = this.entries.get(key);
    return identity !== undefined && seen?.identity === identity && Date.now() - seen.at < this.limits.reverifyMs;
  }

  /** Whether memory holds bytes for this key (worth asking the store for its identity). */
  holds(key: string): boolean {
    return this.kept.has(key);
  }

  /** The kept bytes, if the stored object still has the identity they were hashed under. */
  body(key: string, identity: string | undefined): Buffer | undefined {
    const entry = this.entries.get(key);
    if (!entry?.body) return undefined;
    if (!this.isCurrent(key, identity)) {
      this.dropBody(key, entry);
      return undefined;
    }
    this.kept.delete(key);
    this.kept.set(key, entry.body.length);
    return entry.body;
  }

  /**
   * Room to read a body of this size into memory while it is hashed, so it can be kept: bodies
   * being read count against a budget of their own, as large as the kept bodies' (a burst of
   * first GETs of cold entries must not hold them all at once). unclaim() when done.
   */
  claim(size: number): boolean {
    return size <= this.limits.memoryObjectBytes && this.reading.claim(size);
  }

  unclaim(size: number): void {
    this.reading.release(size);
  }

  /** These stored bytes were hashed and matched now; `body` is kept if small enough. */
  record(key: string, identity: string, body?: Buffer): void {
    this.forget(key);
    const entry: Entry = { identity, at: Date.now() };
    this.entries.set(key, entry);
    if (!body || body.length > this.limits.memoryObjectBytes || body.length > this.limits.memoryBytes) return;
    entry.body = body;
    this.kept.set(key, body.length);
    this.held += body.length;
    // Every kept key has its entry (both maps change together).
    for (const old of this.kept.keys()) {
      if (this.held <= this.limits.memoryBytes) break;
      this.dropBody(old, this.entries.get(old)!);
    }
  }

  forget(key: string): void {
    const entry = this.entries.get(key);
    if (entry) this.dropBody(key, entry);
    this.entries.delete(key);
  }

  private dropBody(key: string, entry: Entry): void {
    if (!entry.body) return;
    this.held -= entry.body.length;
    this.kept.delete(key);
    entry.body = undefined;
  }
}
