/** Facts read from the kernel's own headers and from built modules, checked before a result is kept. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Arch } from './names.ts';

/** gcc major from CONFIG_CC_VERSION_TEXT (or CONFIG_GCC_VERSION), e.g. "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0" → "12". */
export function gccMajorOf(configText: string): { text: string; major: string } | undefined {
  const line = configText.match(/^CONFIG_CC_VERSION_TEXT="([^"]*)"/m);
  if (!line) {
    // Older kernels (Debian's 5.10) record only CONFIG_GCC_VERSION=100201 (major × 10000 + …).
    const numeric = configText.match(/^CONFIG_GCC_VERSION=(\d+)$/m);
    if (!numeric || Number(numeric[1]) === 0) return undefined;
    return { text: `CONFIG_GCC_VERSION=${numeric[1]}`, major: String(Math.floor(Number(numeric[1]) / 10000)) };
  }
  // "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110": the version follows the parenthesised vendor part.
  const version = line[1]!.match(/\)\s*(\d+)\.\d+/) ?? line[1]!.match(/(\d+)\.\d+/);
  return version ? { text: line[1]!, major: version[1]! } : undefined;
}

export async function kernelCompiler(kernelTree: string): Promise<{ text: string; major: string } | undefined> {
  const config = await readFile(join(kernelTree, '.config'), 'utf8').catch(() => '');
  return gccMajorOf(config);
}

const ELF_MACHINE: Record<number, Arch> = { 62: 'x86_64', 183: 'aarch64' };

/** The architecture an ELF object is for (e_machine), or undefined when it is not a 64-bit LE ELF we know. */
export function elfArch(bytes: Buffer): Arch | undefined {
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1) return undefined;
  return ELF_MACHINE[bytes.readUInt16LE(18)];
}
