/**
 * The two concurrency shapes kmatrix needs, written once: a bounded pool over a list, and one
 * shared run per key.
 */

/** Runs `run` over the items, `width` at a time: thousands of small I/O jobs without thousands of open handles. */
export async function inParallel<T>(items: readonly T[], run: (item: T) => Promise<void>, width = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/**
 * One run per key: callers asking for a key while its run is going share it. A failed run is
 * always forgotten, so the next caller tries again; a finished one is kept when `remember` is set
 * (a download: done once per process), else forgotten (a request: the next one looks again).
 */
export class KeyedRuns<T> {
  private readonly runs = new Map<string, Promise<T>>();
  private readonly remember: boolean;

  constructor(options: { remember: boolean }) {
    this.remember = options.remember;
  }

  /** Whether a run for `key` is going (or, with `remember`, has succeeded). */
  has(key: string): boolean {
    return this.runs.has(key);
  }

  run(key: string, start: () => Promise<T>): Promise<T> {
    const running = this.runs.get(key);
    if (running) return running;
    const p = start();
    this.runs.set(key, p);
    const forget = () => {
      if (this.runs.get(key) === p) this.runs.delete(key);
    };
    p.then(this.remember ? undefined : forget, forget);
    return p;
  }
}

/** What `Slots.run` throws when every slot is busy and the queue is full. */
export class QueueFull extends Error {
  constructor() {
    super('every slot is busy and the queue is full');
    this.name = 'QueueFull';
  }
}

/**
 * At most `width` runs at once and at most `queue` waiting; past that, `run` refuses at once
 * (QueueFull) instead of queueing without bound: a service under load answers "later".
 */
export class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly width: number;
  private readonly queue: number;

  constructor(width: number, queue: number) {
    this.width = width;
    this.queue = queue;
  }

  async run<T>(start: () => Promise<T>): Promise<T> {
    if (this.active >= this.width) {
      if (this.waiting.length >= this.queue) throw new QueueFull();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.active++;
    try {
      return await start();
    } finally {
      // The slot passes straight to the next waiter, or is freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
