import type { Arch } from '../../model/names.ts';

/** Debian's architecture name for an arch (dpkg's, in package file names and index paths). */
export const debianArch: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64' };
