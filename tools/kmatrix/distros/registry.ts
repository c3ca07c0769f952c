/**
 * The distro families kmatrix knows. A new family is a folder under distros/ implementing
 * DistroFamily (family.ts), plus its line here.
 */
import { KmatrixError } from '../core/errors.ts';
import type { DistroFamily } from './family.ts';
import { deb } from './deb/family.ts';
import { rpm } from './rpm/family.ts';

export const FAMILIES: readonly DistroFamily[] = [deb, rpm];

// Roles name a target's family, so no two families may share one (a programming error, caught at load).
for (const [i, f] of FAMILIES.entries()) {
  const shared = f.roles.filter((r) => FAMILIES.slice(i + 1).some((g) => g.roles.includes(r)));
  if (shared.length > 0)
    throw new Error(`distro family ${f.name} shares header roles with another family: ${shared.join(', ')}`);
}

export const familyNames = () => FAMILIES.map((f) => f.name);

/** The family a policy distro names in its `family` field. */
export function familyNamed(name: string): DistroFamily {
  const family = FAMILIES.find((f) => f.name === name);
  if (!family) {
    throw new KmatrixError(`unknown distro family "${name}"`, {
      stage: 'policy',
      remedy: `use one of: ${familyNames().join(', ')} (a new family is a folder under tools/kmatrix/distros/)`,
    });
  }
  return family;
}

/** The family whose vocabulary these header roles are, if one is. */
export const familyOwning = (roles: readonly string[]): DistroFamily | undefined =>
  FAMILIES.find((f) => roles.length > 0 && roles.every((r) => f.roles.includes(r)));

/** The family whose header roles a kernel's packages carry (roles are each family's own vocabulary). */
export function familyOfHeaders(headers: readonly { role: string }[]): DistroFamily {
  const family = familyOwning(headers.map((h) => h.role));
  if (!family) {
    throw new KmatrixError(
      `no distro family has the header roles ${[...new Set(headers.map((h) => h.role))].join(', ')}`,
      {
        stage: 'target',
        remedy: 'targets/ is generated: run `npx kmatrix gen` instead of editing it by hand',
      },
    );
  }
  return family;
}

/** The family that reads a kernel-crawler distro's entries, if any. */
export const familyOfCrawlerDistro = (key: string): DistroFamily | undefined =>
  FAMILIES.find((f) => f.crawlerDistros.includes(key));
