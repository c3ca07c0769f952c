/**
 * The seam between kmatrix and a distro family. Everything kmatrix knows about one family's
 * archive, packages and file layout sits behind this interface, in distros/<family>/; the layers
 * above ask it, and never name a package, role or path of their own.
 */
import type { HeaderPackage, KernelEntry, ListedKernel, ListedPackage } from '../model/kernel-list.ts';
import type { Arch } from '../model/names.ts';
import type { ToolchainSpec } from '../model/toolchain.ts';
import type { MountRule } from '../model/mount-rule.ts';

export type Log = (line: string) => void;

/** A crawl of the family's archive; one per command run, so indexes shared by several arches are fetched once. */
export interface ArchiveCrawl {
  /**
   * Every kernel of `os` `release` × `arch` the archive offers, with each header package pinned
   * (SHA256, size), filed under the policy distro `distro`.
   */
  kernels(release: string, arch: Arch, distro: string, os: string): Promise<KernelEntry[]>;
}

/** One kernel-crawler entry read into a kernel with named header packages, or why it cannot be. */
/** An entry read as its kernel, or why it cannot be (`kind`: the reason in words shared by every entry it hits, printed once). */
export type CrawlerEntryReader = (entry: KernelEntry, listKey: string) => ListedKernel | { why: string; kind?: string };

/** Where the tool that signs modules is: a header package's tree, and the file's path pattern in it. */
export type SigningTool = { package: HeaderPackage; pathPattern: string } | { why: string };

export interface DistroFamily {
  /** The policy's `family` value for the distros it serves, e.g. "debian". */
  readonly name: string;
  /** The distros it serves (os-release IDs, the policy's `distro` values). */
  readonly distros: readonly string[];
  /** The distro a policy distro of this family is when it names none (default: the only one, if it serves one). */
  readonly defaultDistro?: string;
  /** The key a crawl files a distro release's entries under in a kernel list (kernel-crawler's). */
  listKey(distro: string, release: string): string;
  /** kernel-crawler distro keys whose entries this family reads. */
  readonly crawlerDistros: readonly string[];
  /** The header package roles this family writes into kernel lists and targets; no two families share one. */
  readonly roles: readonly string[];

  /** What a crawl of this family reads and where from, for `kmatrix crawl --help` (lines of at most 80 characters). */
  readonly crawlHelp: string;

  /** Starts a crawl of the family's archive (its mirrors are found here, with a remedy when there are none). */
  crawl(log: Log): Promise<ArchiveCrawl>;
  /**
   * A reader for kernel-crawler entries (URLs only). `distroOf(release, os)` names the policy
   * distro an os-release ID's release belongs to, which the kernel is filed under.
   */
  crawlerEntries(distroOf: (release: string, os: string) => string): Promise<CrawlerEntryReader>;

  /** KDIR in the build container: the kernel's header tree, where the family's own Makefiles expect it. */
  kernelDir(kernelrelease: string): string;
  /** Where an unpacked header package's folders go in the build container (as installing it would place them), read-only. */
  readonly headerMountRules: readonly MountRule[];
  /** Why a `kernelArch` kernel's header packages cannot build on a `hostArch` machine (no host tools for it), or undefined. */
  missingHostTools(headers: ListedPackage[], hostArch: Arch, kernelArch: Arch): string | undefined;
  /** Environment the build needs to run the headers' host programs on a `hostArch` runner (e.g. under qemu-user). */
  hostToolsEnv(headers: ListedPackage[], hostArch: Arch, kernelArch: Arch): Record<string, string>;
  /** The header package whose tree holds the kernel's .config (which says the compiler it was built with). */
  configPackage<P extends ListedPackage>(headers: P[]): P | undefined;
  /** The tool that signs a `kernelArch` kernel's modules, runnable on `host`. */
  signingTool(headers: HeaderPackage[], host: Arch, kernelArch: Arch): SigningTool;

  /** The flavour most people mean for `arch` on distro `os` (a rule's suggested default), if the family has one. */
  plainFlavour(arch: Arch, os?: string): string | undefined;

  /** The file inside the kernel image package that QEMU boots. */
  kernelImageFile(kernelrelease: string): string;
  /** Why a kernel has no image to boot, when its list names none. */
  noImage(kernelrelease: string, packageVersion: string): string;

  /**
   * Writes a toolchain's whole root filesystem to `out` as one tarball that is byte for byte the
   * same wherever the same package versions are installed (fixed timestamps, order, owners, no
   * host data); returns every installed package with its version, for the lock.
   */
  toolchainRootfs(spec: ToolchainSpec, out: string, log: Log): Promise<Record<string, string>>;
}
