/**
 * Policies written before distros named their family: each distro gets `family` and `release`.
 * The family is read from the distro's name once, here, when the user asks for the migration
 * (`<family>-<release>`, e.g. debian-bookworm); kmatrix itself never guesses it from a name.
 */
export interface Migration {
  /** The policy with the fields added (the input is not modified). */
  policy: unknown;
  /** Distros that got the fields, as "name: family/release". */
  migrated: string[];
  /** Distros whose family cannot be read from their name, with the path to fill in by hand. */
  problems: string[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function migratePolicy(raw: unknown, families: readonly string[], file: string): Migration {
  const out: Migration = { policy: structuredClone(raw), migrated: [], problems: [] };
  const distros = isObject(out.policy) && isObject(out.policy.distros) ? out.policy.distros : {};
  for (const [name, value] of Object.entries(distros)) {
    if (!isObject(value) || (value.family !== undefined && value.release !== undefined)) continue;
    const family = families.find((f) => name.startsWith(`${f}-`) && name.length > f.length + 1);
    if (!family) {
      out.problems.push(
        `${file}: distros.${name}: add "family" (one of: ${families.join(', ')}) and "release" by hand: its name does not start with a family`,
      );
      continue;
    }
    // The new fields first, the distro's own after them, in their order.
    distros[name] = { family, release: name.slice(family.length + 1), ...value };
    out.migrated.push(`${name}: ${family}/${name.slice(family.length + 1)}`);
  }
  return out;
}

/** JSON as the committed policy is written: two-space indents, arrays of plain values on one line. */
export function policyText(value: unknown): string {
  const text = JSON.stringify(value, null, 2).replace(
    /\[\n\s+([^[\]{}]*?)\n\s*\]/g,
    (_, items: string) => `[${items.split(/,\n\s*/).join(', ')}]`,
  );
  return `${text.replace(/\{\n\s+("[^"{}[\]]*": [^{}[\]\n]*(?:,\n\s+"[^"{}[\]]*": [^{}[\]\n]*)*)\n\s*\}/g, (m, body: string) => (m.length <= 120 ? `{ ${body.split(/,\n\s*/).join(', ')} }` : m))}\n`;
}
