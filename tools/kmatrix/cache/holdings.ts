/**
 * What the cache server holds: every object's metadata by key (so 409s, GETs and eviction need no
 * lookup in the store per request), the bytes held per namespace, and what keeps them within
 * bounds — each namespace's budget, least recently used objects evicted first, and the expiry of
 * idle objects of namespaces other than main (a closed pull request's).
 */
import { objectKey, type BlobStore, type ObjectMeta } from './blob-store.ts';

export interface Budgets {
  /** Evict main's least-recently-used objects when main holds more than this (0: no limit). */
  maxBytes: number;
  /** The same for every other namespace, each on its own (0: no limit). A writer only ever
   * evicts its own namespace's objects, so a pull request cannot push main's out. */
  namespaceMaxBytes: number;
  /** Objects of namespaces other than main unused for this long are removed (a closed pull
   * request's). 0: kept until evicted. */
  namespaceTtlMs?: number;
}

export class Holdings {
  private readonly index = new Map<string, ObjectMeta>();
  private readonly held = new Map<string, number>();
  private expiredAt = 0;
  private readonly store: BlobStore;
  private readonly budgets: Budgets;
  private readonly log: (entry: Record<string, unknown>) => void;
  /** Told of every object that stops being held (evicted, expired, quarantined). */
  private readonly onForget: (key: string) => void;

  constructor(
    store: BlobStore,
    budgets: Budgets,
    log: (entry: Record<string, unknown>) => void,
    onForget: (key: string) => void,
  ) {
    this.store = store;
    this.budgets = budgets;
    this.log = log;
    this.onForget = onForget;
  }

  get size(): number {
    return this.index.size;
  }

  get(key: string): ObjectMeta | undefined {
    return this.index.get(key);
  }

  add(meta: ObjectMeta): void {
    this.index.set(objectKey(meta.namespace, meta.hash), meta);
    this.count(meta.namespace, meta.size);
  }

  /** The objects of these namespaces (what a token may list). */
  visibleTo(namespaces: string[]): ObjectMeta[] {
    return [...this.index.values()].filter((o) => namespaces.includes(o.namespace));
  }

  /** The namespace's byte budget (0: no limit). */
  budgetOf(ns: string): number {
    return ns === 'main' ? this.budgets.maxBytes : this.budgets.namespaceMaxBytes;
  }

  forget(ns: string, hash: string): void {
    const key = objectKey(ns, hash);
    this.onForget(key);
    const meta = this.index.get(key);
    if (meta) this.count(ns, -meta.size);
    this.index.delete(key);
  }

  /**
   * The namespace's least recently used objects first, down to 90% of its budget, so eviction does
   * not run on every PUT. Only the writer's own namespace: no one's PUT evicts another's objects.
   */
  async evict(ns: string): Promise<void> {
    await this.expire();
    const budget = this.budgetOf(ns);
    if (budget <= 0 || (this.held.get(ns) ?? 0) <= budget) return;
    const byAge = [...this.index.values()]
      .filter((m) => m.namespace === ns)
      .sort((a, b) => a.lastAccess.localeCompare(b.lastAccess));
    for (const meta of byAge) {
      if ((this.held.get(ns) ?? 0) <= budget * 0.9) break;
      await this.store.remove(meta.namespace, meta.hash);
      this.forget(meta.namespace, meta.hash);
      this.log({
        level: 'info',
        message: `evicted ${meta.namespace}/${meta.hash} (${meta.size} bytes, last used ${meta.lastAccess})`,
      });
    }
  }

  /**
   * Removes the objects of namespaces other than main that nobody used for the TTL: pull requests
   * end, their namespaces must not hold disk forever. On a PUT, at most once an hour (or a tenth of the TTL).
   */
  private async expire(): Promise<void> {
    const ttl = this.budgets.namespaceTtlMs ?? 0;
    if (ttl <= 0 || Date.now() - this.expiredAt < Math.min(3_600_000, ttl / 10)) return;
    this.expiredAt = Date.now();
    const cutoff = new Date(Date.now() - ttl).toISOString();
    for (const meta of [...this.index.values()]) {
      if (meta.namespace === 'main' || meta.lastAccess >= cutoff) continue;
      await this.store.remove(meta.namespace, meta.hash);
      this.forget(meta.namespace, meta.hash);
      this.log({ level: 'info', message: `expired ${meta.namespace}/${meta.hash} (last used ${meta.lastAccess})` });
    }
  }

  private count(ns: string, bytes: number): void {
    this.held.set(ns, (this.held.get(ns) ?? 0) + bytes);
  }
}
