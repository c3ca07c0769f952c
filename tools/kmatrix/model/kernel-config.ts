/** Facts read from the kernel's own headers and from built modules, checked before a result is kept. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Arch } from './names.ts';
import { gccOfConfig, type GccIdentity } from './compiler.ts';

/** The gcc the kernel was built with, as its headers' .config records it. */
export async function kernelCompiler(kernelTree: string): Promise<GccIdentity | undefined> {
  const config = await readFile(join(kernelTree, '.config'), 'utf8').catch(() => '');
  return gccOfConfig(config);
}

const ELF_MACHINE: Record<number, Arch> = { 62: 'x86_64', 183: 'aarch64' };

/** The architecture an ELF object is for (e_machine), or undefined when it is not a 64-bit LE ELF we know. */
export function elfArch(bytes: Buffer): Arch | undefined {
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1) return undefined;
  return ELF_MACHINE[bytes.readUInt16LE(18)];
}
