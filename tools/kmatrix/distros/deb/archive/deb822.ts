/**
 * Debian control-file stanzas (the `Packages` index and `.sources` files): "Field: value" lines,
 * continuation lines start with a space, stanzas are separated by blank lines.
 */
export type Stanza = Record<string, string>;

export function parseStanza(text: string): Stanza {
  const fields: Stanza = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      fields[last] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    fields[last] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** Stanzas whose first line passes `keep` (cheap pre-filter: the index has ~60k stanzas). */
export function parseStanzas(text: string, keep: (firstLine: string) => boolean = () => true): Stanza[] {
  const out: Stanza[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const trimmed = block.replace(/^\n+/, '');
    if (!trimmed) continue;
    const firstLine = trimmed.slice(0, trimmed.indexOf('\n') === -1 ? undefined : trimmed.indexOf('\n'));
    if (keep(firstLine)) out.push(parseStanza(trimmed));
  }
  return out;
}

/** Names in a Depends field with their version constraint, e.g. `(= 6.1.170-3)` or `(>= 6.1.170-3)`. */
export function parseDepends(field: string | undefined): { name: string; op?: string; version?: string }[] {
  if (!field) return [];
  return field.split(',').map((part) => {
    const m = part.trim().match(/^([a-z0-9][a-z0-9+.-]*)(?::\S+)?\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?/);
    return m ? { name: m[1]!, op: m[2], version: m[3] } : { name: part.trim() };
  });
}
