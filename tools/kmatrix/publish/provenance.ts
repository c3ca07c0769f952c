/**
 * SLSA provenance v1 in an in-toto v1 statement: which module bytes (subjects) came from which
 * toolchain image, header packages, driver sources and commit, built by whom. No timestamps: the
 * statement of one build is the same bytes however often it is published.
 */
import { z } from 'zod';
import type { BuildRecord } from '../model/build-record.ts';
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

/** Who built it: the CI workflow run when there is one, else this machine. */
export function builderFromEnv(env: NodeJS.ProcessEnv = process.env): { id: string; invocationId?: string } {
  if (env.KMATRIX_BUILDER_ID) return { id: env.KMATRIX_BUILDER_ID };
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  if (env.GITHUB_REPOSITORY && env.GITHUB_WORKFLOW_REF) {
    return {
      id: `${server}/${env.GITHUB_WORKFLOW_REF}`,
      ...(env.GITHUB_RUN_ID
        ? { invocationId: `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}` }
        : {}),
    };
  }
  return { id: `kmatrix://${env.HOSTNAME ?? 'localhost'}` };
}

export interface ProvenanceInput {
  target: Target;
  record: BuildRecord;
  revision: string;
  /** The repository's URL, for the source dependency's uri. */
  repository: string;
  builder: { id: string; invocationId?: string };
}

export function provenanceStatement(p: ProvenanceInput): Statement {
  const { target, record } = p;
  const [repository, imageDigest] = record.inputs.toolchain.image.split('@sha256:') as [string, string];
  const headerUrl = new Map(target.headers.map((h) => [h.sha256, h.url]));
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
          source: { uri: `git+${p.repository}`, revision: p.revision },
        },
        internalParameters: {
          make: record.inputs.make,
          env: record.inputs.env,
          targetJsonSha256: record.inputs.targetJsonSha256,
        },
        resolvedDependencies: [
          { uri: `git+${p.repository}@${p.revision}`, digest: { gitCommit: p.revision } },
          {
            uri: `oci://${repository}`,
            name: `toolchain:${record.inputs.toolchain.name}`,
            digest: { sha256: imageDigest },
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
        builder: { id: p.builder.id },
        ...(p.builder.invocationId ? { metadata: { invocationId: p.builder.invocationId } } : {}),
      },
    },
  };
}
