/**
 * The RPM distros kmatrix knows, by os-release ID, and the kernel-crawler key their kernel lists
 * are filed under: one definition for the family (what it serves) and its archive crawler.
 */
export const RPM_DISTRO_IDS = ['fedora', 'almalinux', 'rocky', 'centos', 'ol', 'amazonlinux'] as const;
export type RpmDistroId = (typeof RPM_DISTRO_IDS)[number];

/** kernel-crawler files Amazon Linux per release (amazonlinux2, amazonlinux2023), the others per distro. */
export const rpmListKey = (distro: string, release: string) =>
  distro === 'amazonlinux' ? `amazonlinux${release}` : distro;
