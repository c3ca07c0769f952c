/**
 * A synthetic but schema-valid matrix of any size: N kernels × 2 archs of the example driver, with
 * made-up (never fetched) package URLs and digests. For scale tests and benchmarks of everything
 * that does not compile: gen, the project graph, hashing, the cache.
 */
import { createHash } from 'node:crypto';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function pkg(role: 'flavour' | 'common' | 'kbuild', name: string, version: string, hostArch?: string) {
  const url = `http://synthetic.invalid/debian/pool/main/l/linux/${name}_${version}.deb`;
  return { role, name, version, url, sha256: sha(url), size: 1_000_000 + (parseInt(sha(url).slice(0, 6), 16) % 1_000_000), ...(hostArch ? { hostArch } : {}) };
}

/** A kernel list with `kernels` ABIs (6.1.0-1 …) for x86_64 (amd64) and aarch64 (arm64). */
export function syntheticKernelList(kernels: number): { debian: unknown[] } {
  const entries: unknown[] = [];
  for (let i = 1; i <= kernels; i++) {
    const abi = `6.1.0-${i}`;
    const version = `6.1.${i}-1`;
    for (const [arch, flavour] of [['x86_64', 'amd64'], ['aarch64', 'arm64']] as const) {
      const packages = [pkg('flavour', `linux-headers-${abi}-${flavour}`, version), pkg('common', `linux-headers-${abi}-common`, version), pkg('kbuild', 'linux-kbuild-6.1', version, 'x86_64')];
      entries.push({
        kernelversion: '1',
        kernelrelease: `${abi}-${flavour}`,
        target: 'debian',
        headers: packages.map((p) => p.url).sort(),
        kmatrix: { distro: 'debian-bookworm', arch, abi, flavour, packageVersion: version, gcc: '12', packages },
      });
    }
  }
  return { debian: entries };
}

export const syntheticPolicy = {
  drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } },
  distros: { 'debian-bookworm': { toolchain: 'debian-bookworm' } },
  matrix: [{ driver: 'kmx-echo', distro: 'debian-bookworm', archs: ['x86_64', 'aarch64'], flavours: ['amd64', 'arm64'], kernels: ['6.1.0-*'] }],
};
