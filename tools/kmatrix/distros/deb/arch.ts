import type { Arch } from '../../model/names.ts';

/** Debian's architecture name for an arch (dpkg's, in package file names and index paths). */
export const debianArch: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64' };

/** The arch a dpkg architecture name means, for the ones kmatrix builds (the inverse of debianArch). */
export const archOfDebian: Readonly<Record<string, Arch>> = Object.fromEntries(
  Object.entries(debianArch).map(([arch, deb]) => [deb, arch as Arch]),
);
