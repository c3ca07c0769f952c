/**
 * The gcc a kernel was built with, read from its own headers (`.config`'s CONFIG_CC_VERSION_TEXT),
 * for kernels whose list does not say (kernel-crawler entries carry only URLs; `kmatrix crawl`
 * reads it from the package's Depends instead). Unpacks that package into the header
 * store, where the build will find it anyway.
 */
import { KmatrixError } from '../core/errors.ts';
import { StoreWriteError, type HeaderStore } from '../packages/store.ts';
import { kernelCompiler } from '../model/kernel-config.ts';
import type { TargetSpec } from '../model/target.ts';
import { familyOfHeaders } from '../distros/registry.ts';
import { treeMountsOf } from '../packages/tree-mounts.ts';

export const kernelKey = (kernelrelease: string, arch: string) => `${kernelrelease} ${arch}`;

/**
 * The gcc major of each target's kernel, read from the header package holding its .config; a package that cannot be
 * unpacked or read (a mirror that served something else) costs only its own kernel: it is
 * returned in `failed`, with why.
 */
export async function compilersFromHeaders(
  targets: TargetSpec[],
  store: HeaderStore,
): Promise<{ learned: Map<string, string>; failed: Map<string, string> }> {
  const learned = new Map<string, string>();
  const failed = new Map<string, string>();
  for (const t of targets) {
    const key = kernelKey(t.kernelrelease, t.arch);
    const family = familyOfHeaders(t.headers);
    const holder = family.configPackage(t.headers);
    if (learned.has(key) || failed.has(key) || !holder) continue;
    try {
      const mount = (await treeMountsOf(await store.tree(holder), family.headerMountRules)).find(
        (m) => m.container === t.kernelDir,
      );
      const cc = mount && (await kernelCompiler(mount.host));
      if (cc) learned.set(key, cc.major);
    } catch (error) {
      if (!(error instanceof KmatrixError) || error.stage !== 'headers' || error instanceof StoreWriteError)
        throw error;
      failed.set(key, `cannot read its compiler from ${holder.name} ${holder.version}: ${error.message}`);
    }
  }
  return { learned, failed };
}
