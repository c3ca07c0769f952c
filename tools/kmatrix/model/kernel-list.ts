/**
 * The kernel list: kernel-crawler's JSON shape ({ "<distro>": [ {kernelversion, kernelrelease,
 * target, headers} ] }) so crawler output can be read as-is, plus our `kmatrix` block per entry
 * carrying what the family's archive index tells us up front: each header package's SHA256 and size.
 * Entries without the block (real kernel-crawler output) are read by their distro family
 * (gen/crawler-list.ts).
 */
import { z } from 'zod';
import { arch, identifier, sha256Hex } from './names.ts';
import { readJsonFile } from '../core/json-file.ts';

/** What a header package is for; each distro family has its own vocabulary (distros/<family>/). */
export const packageRole = identifier;

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** A header package as a kernel list names it: digests may still be unknown (crawler input). */
export const listedPackage = z
  .object({
    role: packageRole,
    name: z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'must be a package name'),
    version: z.string().regex(/^[A-Za-z0-9.+~:_-]+$/, 'must be a package version'),
    url: httpUrl,
    /** The same file elsewhere (other mirrors): tried in order when `url` does not answer; one download. */
    alternatives: z.array(httpUrl).optional(),
    sha256: sha256Hex.optional(),
    size: z.number().int().positive().optional(),
    /**
     * How the digest was learned when no archive index gave it (kernel-crawler lists only URLs):
     * the first download, trusted and recorded. Absent: the archive's signed index pinned it.
     */
    pinnedBy: z.literal('first-download').optional(),
    /** For kbuild (host programs): the machine it runs on. arm64 kernels list an amd64 one (cross) and an arm64 one (native). */
    hostArch: arch.optional(),
  })
  .strict();
export type ListedPackage = z.infer<typeof listedPackage>;

/** A header package whose bytes are pinned: what a target carries. */
export const headerPackage = listedPackage.required({ sha256: true, size: true });
export type HeaderPackage = z.infer<typeof headerPackage>;

/**
 * The kernel itself (linux-image-<abi>-<flavour>-unsigned on Debian): what `test-driver` boots to
 * prove a module loads. Never needed to build, so a kernel without one still builds.
 */
export const listedImage = listedPackage.omit({ role: true, hostArch: true });
export type ListedImage = z.infer<typeof listedImage>;
export const imagePackage = listedImage.required({ sha256: true, size: true });
export type ImagePackage = z.infer<typeof imagePackage>;

/** How a package is named in kmatrix.unavailable: "name", or "name (hostArch)" for kbuild. */
export function packageLabel(p: Pick<ListedPackage, 'name' | 'hostArch'>): string {
  return p.name + (p.hostArch ? ` (${p.hostArch})` : '');
}

export const kmatrixBlock = z
  .object({
    distro: identifier,
    arch,
    abi: z.string().regex(/^[0-9][A-Za-z0-9.+~_-]*$/),
    flavour: identifier,
    packageVersion: z.string(),
    /** gcc major the kernel was built with, as its header package's Depends say (linux-compiler-gcc-12-x86, gcc-14). */
    gcc: z.string().regex(/^\d+$/).optional(),
    packages: z.array(listedPackage).min(1),
    /** The kernel image package, when the archive has one (its absence only stops test-driver). */
    image: listedImage.optional(),
    /** Packages (name, or "name (hostArch)" for kbuild; the image by name) the index lists but the mirror answered 404 for at crawl time. */
    unavailable: z.array(z.string()).optional(),
  })
  .strict();
export type KmatrixBlock = z.infer<typeof kmatrixBlock>;

/** `uname -r`-like, and never a path: crawler values end up in folder and project names. */
const releaseText = z
  .string()
  .regex(
    /^[0-9A-Za-z][A-Za-z0-9.+~_-]{0,127}$/,
    'must be a kernel release (letters, digits, ".", "+", "~", "_", "-"; no "/" or spaces)',
  )
  .refine((s) => !s.includes('..'), 'must not contain ".."');

export const kernelEntry = z
  .object({
    // The 2022 crawler wrote numbers here; the current one writes strings.
    kernelversion: z.union([
      z.string().regex(/^[A-Za-z0-9._+~-]*$/, 'must be a plain version string'),
      z.number().int(),
    ]),
    kernelrelease: releaseText,
    target: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a kernel-crawler target (e.g. debian, ubuntu-generic)'),
    headers: z.array(httpUrl).optional(),
    kernelconfigdata: z.string().optional(),
    kmatrix: kmatrixBlock.optional(),
  })
  .loose();
export type KernelEntry = z.infer<typeof kernelEntry>;

/** Current keys (kernel_crawler/crawler.py DISTROS) and what the 2022 display names became. */
const CURRENT_KEYS = [
  'alinux',
  'almalinux',
  'amazonlinux',
  'amazonlinux2',
  'amazonlinux2022',
  'amazonlinux2023',
  'centos',
  'fedora',
  'ol',
  'photon',
  'rocky',
  'opensuse',
  'debian',
  'ubuntu',
  'flatcar',
  'minikube',
  'redhat',
  'arch',
  'bottlerocket',
  'talos',
] as const;
const LEGACY_KEYS: Record<string, string> = {
  AmazonLinux: 'amazonlinux',
  AmazonLinux2: 'amazonlinux2',
  AmazonLinux2022: 'amazonlinux2022',
  AmazonLinux2023: 'amazonlinux2023',
  CentOS: 'centos',
  Fedora: 'fedora',
  Oracle6: 'ol',
  Oracle7: 'ol',
  Oracle8: 'ol',
  PhotonOS: 'photon',
  Debian: 'debian',
  Ubuntu: 'ubuntu',
  Flatcar: 'flatcar',
  Minikube: 'minikube',
  Rocky: 'rocky',
  AlmaLinux: 'almalinux',
  BottleRocket: 'bottlerocket',
  ArchLinux: 'arch',
  OpenSUSE: 'opensuse',
  RedHat: 'redhat',
};

/** The os-release ID of a top-level key, or undefined if we do not know the distro. */
export function crawlerDistro(key: string): string | undefined {
  if ((CURRENT_KEYS as readonly string[]).includes(key)) return key;
  return LEGACY_KEYS[key];
}

/**
 * A kernel list: entries per distro key. Keys kernel-crawler adds later, and duplicate entries
 * (real lists carry both), are not the list's fault: gen reports each such entry as skipped, with
 * why, and reads the rest (gen/crawler-list.ts). Only an entry that is malformed in itself (a path
 * in a release, a URL that is not http) makes the list invalid.
 */
export const kernelList = z.record(z.string(), z.array(kernelEntry));
export type KernelList = z.infer<typeof kernelList>;

/** A kernel we know how to fetch: its header packages are named (digests maybe pending). */
export interface ListedKernel {
  kernelrelease: string;
  /** What the list called it when that is not `uname -r` (Debian crawler entries: "6.1.170-3-rt-arm64"). */
  listedAs?: string;
  kmatrix: KmatrixBlock;
}

/** Records that no mirror serves this package of the kernel (kept sorted, each once); false if it was known. */
export function markUnavailable(k: ListedKernel, label: string): boolean {
  if (k.kmatrix.unavailable?.includes(label)) return false;
  k.kmatrix.unavailable = [...(k.kmatrix.unavailable ?? []), label].sort();
  return true;
}

export async function loadKernelList(file: string): Promise<KernelList> {
  return readJsonFile(kernelList, file, {
    stage: 'kernel-list',
    what: 'kernel list',
    remedy: `fix the entries listed above (or regenerate it: \`npx kmatrix crawl\`, or re-download the kernel-crawler list); nothing was written`,
  });
}
