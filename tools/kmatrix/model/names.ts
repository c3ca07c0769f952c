/**
 * Names that end up in paths, Nx project names and container arguments. They are validated at the
 * edge so nothing downstream ever sees a `..`, a slash or a shell metacharacter.
 */
import { z } from 'zod';

/** Lower-case identifier: drivers, distros, toolchains, flavours. */
export const identifier = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,62}$/,
    'must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
  )
  .refine((s) => !s.includes('..'), 'must not contain ".."');

/** A kernel module's name as modprobe knows it (no .ko): letters of either case, digits, "_", "-". */
export const moduleName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,55}$/,
    'must be letters, digits, "_" or "-", starting with a letter or digit, at most 56 characters',
  );

/** A kernel release as `uname -r` prints it, e.g. 6.1.0-47-cloud-amd64. */
export const kernelRelease = z
  .string()
  .regex(/^[0-9][A-Za-z0-9.+~_-]{0,127}$/, 'must look like `uname -r` (digits, letters, ".", "+", "~", "_", "-")')
  .refine((s) => !s.includes('..'), 'must not contain ".."');

export const arch = z.enum(['x86_64', 'aarch64']);
export type Arch = z.infer<typeof arch>;

/** Kbuild's ARCH= value for an arch. */
export const kbuildArch: Record<Arch, string> = { x86_64: 'x86', aarch64: 'arm64' };

/** A path inside the repository, relative, with no way out of it. */
export const repoPath = z
  .string()
  .min(1)
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\\'),
    'must be a relative path inside the repository (no leading "/", no "..")',
  );

export const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');
