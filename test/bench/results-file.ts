/**
 * test/bench/RESULTS.md: one line per figure, each tagged with its figure and stamped with the
 * date and commit it was measured on. A run of some figures replaces only those figures' lines,
 * so every line in the file is a recorded measurement, never a leftover of older code unmarked.
 */
export interface ResultLine {
  figure: string;
  text: string;
}

const TAGGED = /^- \[([a-z]+)\] (.*)$/;

/** The figure lines of an existing RESULTS.md (untagged lines, from before lines were tagged, are dropped). */
export function previousLines(markdown: string): ResultLine[] {
  return markdown.split('\n').flatMap((l) => {
    const m = l.match(TAGGED);
    return m ? [{ figure: m[1]!, text: m[2]! }] : [];
  });
}

/**
 * The new RESULTS.md: figures in `order`; those in `ran` from this run (stamped), the others as
 * they were recorded before.
 */
export function renderResults(o: {
  header: string[];
  order: readonly string[];
  ran: ReadonlySet<string>;
  previous: ResultLine[];
  current: ResultLine[];
  stamp: string;
}): string {
  const lines = o.order.flatMap((figure) =>
    o.ran.has(figure)
      ? o.current.filter((l) => l.figure === figure).map((l) => `- [${figure}] ${l.text} (${o.stamp})`)
      : o.previous.filter((l) => l.figure === figure).map((l) => `- [${figure}] ${l.text}`),
  );
  return [...o.header, '', ...lines, ''].join('\n');
}
