/**
 * The guest's userland: one static busybox per arch from Debian's archive, pinned by SHA256 in
 * toolchains/_guest/guest.lock.json so that what runs the smoke test is as fixed as the toolchain
 * that built the module (its busybox digests are in every target's boot recipe).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { imagePackage } from './kernel-list.ts';
import { readJsonFile } from '../core/json-file.ts';
import type { Arch } from './names.ts';

export const GUEST_LOCK = 'toolchains/_guest/guest.lock.json';

export const guestLockSchema = z
  .object({
    busybox: z.object({ x86_64: imagePackage, aarch64: imagePackage }).strict(),
  })
  .strict();
export type GuestLock = z.infer<typeof guestLockSchema>;

export async function loadGuestLock(root: string): Promise<GuestLock> {
  return readJsonFile(guestLockSchema, join(root, GUEST_LOCK), {
    stage: 'boot',
    what: 'guest lock',
    remedy: `restore ${GUEST_LOCK} from git (it pins busybox-static per arch: name, version, url, sha256, size from Debian's Packages index)`,
  });
}

export function busyboxOf(lock: GuestLock, arch: Arch) {
  return lock.busybox[arch];
}
