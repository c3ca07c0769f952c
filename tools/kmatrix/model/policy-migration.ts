/**
 * Policies written by an older kmatrix, brought up to date when the user asks
 * (`kmatrix policy migrate`):
 * - distros from before they named their family get `family` and `release` (and `distro` where the
 *   family serves several), read from the distro's name once, here (`<distro>-<release>`, e.g.
 *   debian-bookworm, fedora-41); kmatrix itself never guesses them from a name;
 * - family "debian" became "deb" when it began to serve Ubuntu too.
 */
import type { FamilyNames } from './policy.ts';

export interface Migration {
  /** The policy with the fields added (the input is not modified). */
  policy: unknown;
  /** Distros that changed, as "name: what changed". */
  migrated: string[];
  /** Distros whose family cannot be read from their name, with the path to fill in by hand. */
  problems: string[];
}

/** Family names that were renamed, old → new. */
const RENAMED: Record<string, string> = { debian: 'deb' };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function migratePolicy(raw: unknown, families: readonly FamilyNames[], file: string): Migration {
  const out: Migration = { policy: structuredClone(raw), migrated: [], problems: [] };
  const distros = isObject(out.policy) && isObject(out.policy.distros) ? out.policy.distros : {};
  for (const [name, value] of Object.entries(distros)) {
    if (!isObject(value)) continue;
    if (typeof value.family === 'string' && RENAMED[value.family]) {
      out.migrated.push(`${name}: family ${value.family} → ${RENAMED[value.family]}`);
      value.family = RENAMED[value.family];
    }
    if (value.family !== undefined && value.release !== undefined) continue;
    const match = families
      .flatMap((f) => f.distros.map((os) => ({ family: f, os })))
      .find(({ os }) => name.startsWith(`${os}-`) && name.length > os.length + 1);
    if (!match) {
      out.problems.push(
        `${file}: distros.${name}: add "family" (one of: ${families.map((f) => f.name).join(', ')}) and "release" by hand: its name does not start with a distro (${families.flatMap((f) => f.distros).join(', ')})`,
      );
      continue;
    }
    const release = name.slice(match.os.length + 1);
    const os = match.family.defaultDistro === match.os ? {} : { distro: match.os };
    // The new fields first, the distro's own after them, in their order.
    distros[name] = { family: match.family.name, ...os, release, ...value };
    out.migrated.push(`${name}: ${match.family.name}/${match.os}/${release}`);
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
