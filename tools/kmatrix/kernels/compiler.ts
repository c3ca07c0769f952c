/**
 * The gcc a kernel was built with, read from its own headers (`.config`'s CONFIG_CC_VERSION_TEXT),
 * for kernels whose list does not say (kernel-crawler entries carry only URLs; `kmatrix crawl`
 * reads it from the package's Depends instead). Unpacks the flavour package into the header
 * store, where the build will find it anyway.
 */
import { join } from 'node:path';
import type { HeaderStore } from '../headers/store.ts';
import { kernelCompiler } from '../build/kernel-config.ts';
import type { Target } from '../matrix/target.ts';

export const kernelKey = (kernelrelease: string, arch: string) => `${kernelrelease} ${arch}`;

export async function compilersFromHeaders(targets: Target[], store: HeaderStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of targets) {
    const key = kernelKey(t.kernelrelease, t.arch);
    const flavour = t.headers.find((h) => h.role === 'flavour');
    if (out.has(key) || !flavour) continue;
    const tree = await store.tree(flavour);
    const cc = await kernelCompiler(join(tree, 'usr/src', `linux-headers-${t.kernelrelease}`));
    if (cc) out.set(key, cc.major);
  }
  return out;
}
