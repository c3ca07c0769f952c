/**
 * `kmatrix publish --packages deb,rpm`: one installable package per published target, of its
 * family's format (a .deb for a Debian or Ubuntu kernel, an .rpm for Fedora, EL or Amazon Linux),
 * made from the published module bytes (read back and checked), stored beside them in the build's
 * folder and recorded in the index entry. Publishing again makes the same bytes and stores nothing.
 */
import { dirname } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';
import { familyOfHeaders } from '../distros/registry.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { writeLatest } from './latest.ts';
import {
  type BuiltPackage,
  PACKAGE_FORMATS,
  type PackageFormat,
  type PackageInput,
  requireTool,
} from './node-package.ts';
import { debPackage } from './package-deb.ts';
import { rpmPackage } from './package-rpm.ts';
import { addToEntries, loadIndex, type PublishedTarget, readPublishedModules } from './published-index.ts';

const MAKERS: Record<PackageFormat, { make: (p: PackageInput) => Promise<BuiltPackage>; tool: string; apt: string }> = {
  deb: { make: debPackage, tool: 'dpkg-deb', apt: 'dpkg' },
  rpm: { make: rpmPackage, tool: 'rpmbuild', apt: 'rpm' },
};

/** `--packages deb,rpm` → the formats, or a usage error naming the unknown one. */
export function parseFormats(text: string): PackageFormat[] {
  const formats = text.split(',').map((f) => f.trim());
  for (const f of formats)
    if (!PACKAGE_FORMATS.includes(f as PackageFormat))
      throw new KmatrixError(`--packages: unknown format "${f}"`, {
        stage: 'usage',
        remedy: `formats: ${PACKAGE_FORMATS.join(', ')} (e.g. --packages deb,rpm)`,
      });
  return [...new Set(formats as PackageFormat[])];
}

/** The tools the formats need are here, or a clear error before anything is published. */
export async function requirePackageTools(formats: PackageFormat[]): Promise<void> {
  for (const f of formats) await requireTool(MAKERS[f].tool, MAKERS[f].apt);
}

type Stored = NonNullable<PublishedTarget['packages']>[number];

export async function publishPackages(o: {
  store: ArtifactStore;
  formats: PackageFormat[];
  log: (line: string) => void;
}): Promise<{ built: string[]; unchanged: string[] }> {
  await requirePackageTools(o.formats);
  const index = await loadIndex(o.store);
  const made = new Map<string, { buildId: string; fields: Partial<PublishedTarget> }>();
  const unchanged: string[] = [];
  for (const [name, entry] of Object.entries(index.targets).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const format = familyOfHeaders(entry.target.headers).name as PackageFormat;
    if (!o.formats.includes(format)) continue;
    if (entry.packages?.some((p) => p.format === format)) {
      unchanged.push(name);
      continue;
    }
    const pkg = await MAKERS[format].make({
      driver: entry.target.driver.name,
      kernelrelease: entry.target.kernelrelease,
      arch: entry.target.arch,
      build: entry.buildId.slice(0, 12),
      modules: await readPublishedModules(o.store, entry),
    });
    const key = `${dirname(entry.modules[0]!.key)}/${pkg.file}`;
    if ((await o.store.putOnce(key, pkg.body)) === 'different')
      throw new KmatrixError(`${o.store.locate(key)} already holds other bytes than this package`, {
        stage: 'publish',
        target: name,
        remedy: 'a published file is never replaced; check that dpkg-deb/rpmbuild make reproducible packages here',
      });
    const stored: Stored = {
      format,
      name: pkg.name,
      file: pkg.file,
      key,
      sha256: sha256(pkg.body),
      size: pkg.body.length,
    };
    made.set(name, { buildId: entry.buildId, fields: { packages: [...(entry.packages ?? []), stored] } });
    o.log(`${format} ${name}  ${pkg.file}`);
  }
  // The stable per-kernel addresses of the entries that gained a package.
  await writeLatest(o.store, await addToEntries(o.store, made));
  return { built: [...made.keys()], unchanged };
}
