/** Runs `run` over the items, `width` at a time: thousands of small I/O jobs without thousands of open handles. */
export async function inParallel<T>(items: T[], run: (item: T) => Promise<void>, width = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
