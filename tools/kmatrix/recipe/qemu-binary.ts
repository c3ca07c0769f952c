/**
 * The QEMU system emulator that boots a guest of each arch. Apart from the guest's recipe
 * (guest.ts) because the Nx plugin names it among every test-driver task's inputs on every
 * command, and should not load the recipe's renderer for that.
 */
import type { Arch } from '../model/names.ts';

export const QEMU_BINARY: Record<Arch, string> = { x86_64: 'qemu-system-x86_64', aarch64: 'qemu-system-aarch64' };
