/**
 * SLSA provenance v1 in an in-toto v1 statement: which module bytes (subjects) came from which
 * toolchain image, header packages, driver sources and commit, built by whom. No timestamps: the
 * statement of one build is the same bytes however often it is published.
 */
import { z } from 'zod';
import type { BuildRecord, Builder } from '../model/build-record.ts';
import type { Target } from '../model/target.ts';
import { sha256Hex } from '../model/names.ts';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const BUILD_TYPE = 'https://kmatrix.dev/build-driver/v1';

const digestSet = z
  .record(z.string(), z.string())
  .refine((d) => Object.keys(d).length > 0, 'needs at least one digest');
const resourceDescriptor = z
  .object({ uri: z.string().optional(), name: z.string().optional(), digest: digestSet.optional() })
  .loose();

/** What `kmatrix verify` requires of a statement (other fields are allowed, as in-toto allows). */
export const statementSchema = z
  .object({
    _type: z.literal(STATEMENT_TYPE),
    subject: z.array(z.object({ name: z.string(), digest: z.object({ sha256: sha256Hex }).loose() })).min(1),
    predicateType: z.literal(SLSA_PROVENANCE_V1),
    predicate: z.object({
      buildDefinition: z.object({
        buildType: z.string(),
        externalParameters: z.object({ target: z.string() }).loose(),
        internalParameters: z.record(z.string(), z.unknown()).optional(),
        resolvedDependencies: z.array(resourceDescriptor).min(1),
      }),
      runDetails: z
        .object({
          builder: z.object({ id: z.string().min(1) }).loose(),
          metadata: z.record(z.string(), z.unknown()).optional(),
        })
        .loose(),
    }),
  })
  .loose();
export type Statement = z.infer<typeof statementSchema>;

export interface ProvenanceInput {
  target: Target;
  record: BuildRecord;
  revision: string;
  /** The repository's URL, for the source dependency's uri. */
  repository: string;
  /** Who publishes: named as the builder only for a record that does not say who built it. */
  builder: Builder;
}

/**
 * A URL as recorded: without user name or password. A repository's origin may carry a token
 * (https://x-access-token:…@github.com/…), which must never reach a published statement.
 */
export function withoutCredentials(uri: string): string {
  const scheme = uri.match(/^([a-z][a-z0-9+.-]*):\/\//i);
  if (!scheme) return uri;
  try {
    const url = new URL(uri);
    if (!url.username && !url.password) return uri;
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    // Not parseable: drop everything between the scheme and the last "@" of the authority.
    return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1');
  }
}

export function provenanceStatement(p: ProvenanceInput): Statement {
  const { target, record } = p;
  const repositoryUri = withoutCredentials(p.repository);
  // runDetails are the build's: who ran it (recorded by the build, wherever it ran), not who published.
  const builder = record.builder ?? p.builder;
  const [repository, imageDigest] = record.inputs.toolchain.image.split('@sha256:') as [string, string];
  const headerUrl = new Map(target.headers.map((h) => [h.sha256, withoutCredentials(h.url)]));
  return {
    _type: STATEMENT_TYPE,
    subject: record.outputs.map((o) => ({ name: o.file, digest: { sha256: o.sha256 } })),
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          target: target.name,
          driver: target.driver.name,
          distro: target.distro,
          kernelrelease: target.kernelrelease,
          arch: target.arch,
          source: { uri: `git+${repositoryUri}`, revision: p.revision },
        },
        internalParameters: {
          make: record.inputs.make,
          env: record.inputs.env,
          targetJsonSha256: record.inputs.targetJsonSha256,
        },
        resolvedDependencies: [
          { uri: `git+${repositoryUri}@${p.revision}`, digest: { gitCommit: p.revision } },
          {
            uri: `oci://${repository}`,
            name: `toolchain:${record.inputs.toolchain.name}`,
            digest: { sha256: imageDigest },
            // What is in the image, package by package: its identity in reviewable form.
            ...(record.inputs.toolchain.packages
              ? { annotations: { packages: record.inputs.toolchain.packages } }
              : {}),
          },
          ...record.inputs.headers.map((h) => ({
            uri: headerUrl.get(h.sha256),
            name: `${h.name}_${h.version}`,
            digest: { sha256: h.sha256 },
          })),
          ...Object.entries(record.inputs.driverSources).map(([file, sha256]) => ({
            name: `${target.driver.path}/${file}`,
            digest: { sha256 },
          })),
        ],
      },
      runDetails: {
        builder: { id: builder.id },
        ...(builder.invocationId ? { metadata: { invocationId: builder.invocationId } } : {}),
      },
    },
  };
}
