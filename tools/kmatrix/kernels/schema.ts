/**
 * The kernel list: kernel-crawler's JSON shape ({ "<distro>": [ {kernelversion, kernelrelease,
 * target, headers} ] }) so crawler output can be read as-is, plus our `kmatrix` block per entry
 * carrying what the Debian index tells us up front: each header package's SHA256 and size.
 */
import { z } from 'zod';
import { arch, identifier, kernelRelease, sha256Hex } from '../matrix/names.ts';
import { readJsonFile } from '../files/json.ts';

export const packageRole = z.enum(['flavour', 'common', 'kbuild']);

export const headerPackage = z
  .object({
    role: packageRole,
    name: z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'must be a Debian package name'),
    version: z.string().regex(/^[A-Za-z0-9.+~:-]+$/, 'must be a Debian version'),
    url: z.url({ protocol: /^https?$/ }),
    sha256: sha256Hex,
    size: z.number().int().positive(),
    /** For kbuild (host programs): the machine it runs on. arm64 kernels list an amd64 one (cross) and an arm64 one (native). */
    hostArch: arch.optional(),
  })
  .strict();
export type HeaderPackage = z.infer<typeof headerPackage>;

/** How a package is named in kmatrix.unavailable: "name", or "name (hostArch)" for kbuild. */
export function packageLabel(p: HeaderPackage): string {
  return p.name + (p.hostArch ? ` (${p.hostArch})` : '');
}

const kmatrixBlock = z
  .object({
    distro: identifier,
    arch,
    abi: z.string().regex(/^[0-9][A-Za-z0-9.+~_-]*$/),
    flavour: identifier,
    packageVersion: z.string(),
    /** gcc major the kernel was built with, as its header package's Depends say (linux-compiler-gcc-12-x86, gcc-14). */
    gcc: z.string().regex(/^\d+$/).optional(),
    packages: z.array(headerPackage).min(1),
    /** Packages (name, or "name (hostArch)" for kbuild) the index lists but the mirror answered 404 for at crawl time. */
    unavailable: z.array(z.string()).optional(),
  })
  .strict();

export const kernelEntry = z
  .object({
    // The 2022 crawler wrote numbers here; the current one writes strings.
    kernelversion: z.union([z.string(), z.number()]),
    kernelrelease: z.string().min(1),
    target: z.string().min(1),
    headers: z.array(z.string()).optional(),
    kernelconfigdata: z.string().optional(),
    kmatrix: kmatrixBlock.optional(),
  })
  .loose();
export type KernelEntry = z.infer<typeof kernelEntry>;

export const kernelList = z.record(z.string(), z.array(kernelEntry));
export type KernelList = z.infer<typeof kernelList>;

/** An entry we can build: its header packages and digests are known. */
export const resolvedEntry = kernelEntry.extend({ kernelrelease: kernelRelease, kmatrix: kmatrixBlock });
export type ResolvedEntry = z.infer<typeof resolvedEntry>;

export async function loadKernelList(file: string): Promise<KernelList> {
  return readJsonFile(kernelList, file, {
    stage: 'kernel-list',
    what: 'kernel list',
    remedy: `regenerate it with \`npx kmatrix crawl debian --out ${file}\`, or fix the fields listed above`,
  });
}
