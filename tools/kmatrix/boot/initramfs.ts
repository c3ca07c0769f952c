/**
 * A minimal initramfs as the kernel unpacks it: an uncompressed cpio archive in the "newc" format
 * (every kernel we boot can read it; no compressor to trust). Written in JS so the guest's
 * contents are exactly what we list — owner root, mtime 0, fixed inode numbers: the same inputs
 * give the same bytes.
 */

export type InitramfsEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function record(ino: number, mode: number, nlink: number, name: string, data: Uint8Array): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const fields = [ino, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = `070701${fields.map(hex8).join('')}`;
  const head = Buffer.from(header, 'ascii');
  return [
    head,
    nameBytes,
    Buffer.alloc(pad4(head.length + nameBytes.length)),
    Buffer.from(data),
    Buffer.alloc(pad4(data.length)),
  ];
}

/** Paths are relative ("init", "bin/busybox"); parents must be listed before their children. */
export function writeInitramfs(entries: InitramfsEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    const name = e.path.replace(/^\/+/, '');
    if (!name || name.split('/').includes('..')) throw new Error(`invalid initramfs path: ${e.path}`);
    const ino = i + 1;
    if (e.type === 'dir') parts.push(...record(ino, S_IFDIR | (e.mode ?? 0o755), 2, name, new Uint8Array()));
    else if (e.type === 'file') parts.push(...record(ino, S_IFREG | (e.mode ?? 0o644), 1, name, e.data));
    else parts.push(...record(ino, S_IFLNK | 0o777, 1, name, Buffer.from(e.target, 'utf8')));
  });
  parts.push(...record(0, 0, 1, 'TRAILER!!!', new Uint8Array()));
  const out = Buffer.concat(parts);
  // The kernel reads the archive in 512-byte blocks, as `cpio -o` pads it.
  return Buffer.concat([out, Buffer.alloc((512 - (out.length % 512)) % 512)]);
}

/**
 * A guest that only boots: busybox and an /init that says so and powers off. What the KVM check
 * boots, and the floor the boot bench compares a test with.
 */
export function bareGuest(busybox: Uint8Array, doneMarker: string): Buffer {
  const init = `#!/bin/busybox sh\n/bin/busybox echo "KMX-RESULT booted"\n/bin/busybox echo "${doneMarker}"\n/bin/busybox sleep 5\n/bin/busybox poweroff -f\n`;
  return writeInitramfs([
    ...['bin', 'dev', 'proc', 'sys'].map((path) => ({ type: 'dir' as const, path })),
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'file', path: 'init', data: Buffer.from(init), mode: 0o755 },
  ]);
}
