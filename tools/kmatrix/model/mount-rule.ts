/**
 * A rule placing an unpacked package's folders in a container: each folder directly under `from`
 * in the package's tree is mounted read-only at `to`/<its name>, as installing the package would
 * place it. Distro families state their header layouts as rules, and build recipes carry them, so
 * a build's mounts follow from the rule and the package's bytes alone (packages/tree-mounts.ts).
 */
import { z } from 'zod';

const relativeDir = z
  .string()
  .regex(/^[A-Za-z0-9._+~-]+(\/[A-Za-z0-9._+~-]+)*$/, 'a folder inside the package, without a leading "/"')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

/** An absolute path inside a container. */
export const containerPath = z
  .string()
  .regex(/^(\/[A-Za-z0-9.+~_-]+)+$/, 'must be an absolute path in the container')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

export const mountRuleSchema = z
  .object({
    from: relativeDir,
    to: containerPath,
    /** Only folders whose name starts with this. */
    prefix: z.string().optional(),
  })
  .strict();
export type MountRule = z.infer<typeof mountRuleSchema>;
