/**
 * A kmod image for the Kernel Module Management operator (KMM): a plain OCI image holding a
 * target's modules under /opt/lib/modules/<kernel>/ with `depmod` output beside them, and the
 * three programs KMM's image-extractor step runs from the image itself (`/bin/sh -c "mkdir -p …;
 * cp -R /opt/lib/modules/<kernel> …"`): the guest's pinned static busybox as sh, mkdir and cp.
 *
 * Made from already-built (and, when publishing signs, signed) modules without a compile or the
 * network: depmod is the target's own toolchain's (its image by digest, in the build sandbox), the
 * layer is a tar with fixed owners, modes and times, and the config carries no date — so the same
 * module bytes give the same image digest on any machine.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { create } from 'tar';
import { KmatrixError } from '../core/errors.ts';
import { fileDigest, pushImage } from '../core/oci-registry.ts';
import type { TargetSpec } from '../model/target.ts';
import { handToSandbox } from '../recipe/sandbox.ts';
import { containerOptions, toolRuntime } from '../recipe/container.ts';
import { toolRecipe } from '../recipe/build.ts';
import { runInContainer } from '../compile/container.ts';

/** The kernel version KMM matches and copies by: the node's `uname -r` without a trailing "+". */
export const kmmKernel = (kernelrelease: string) => kernelrelease.replace(/\+$/, '');

/**
 * The image tag of a kernel, as KMM itself writes tags from a kernel version: every character
 * outside [A-Za-z0-9._-] becomes "_" (6.12.117+deb12-amd64 → 6.12.117_deb12-amd64). An OCI tag
 * is at most 128 characters: a longer one keeps its start and ends in a digest of the whole.
 */
export function kmmTag(kernelrelease: string): string {
  const tag = kmmKernel(kernelrelease)
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[.-]/, '_');
  if (tag.length <= 128) return tag;
  return `${tag.slice(0, 111)}-${createHash('sha256').update(tag).digest('hex').slice(0, 16)}`;
}

const OCI_ARCH: Record<TargetSpec['arch'], string> = { x86_64: 'amd64', aarch64: 'arm64' };

/** One tar layer from a folder: entries in name order, mtime 0, no owner names or ids (tar's `portable`). */
async function layerOf(root: string, out: string): Promise<void> {
  const paths: string[] = [];
  const walk = async (rel: string) => {
    const entries = (await readdir(join(root, rel), { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      paths.push(p);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk('');
  await create({ cwd: root, file: out, portable: true, noDirRecurse: true, mtime: new Date(0) }, paths);
}

/** depmod for `kernel` in the toolchain's image: the same program and version wherever it runs. */
async function depmod(docker: Docker, dir: string, kernel: string, toolchain: { repository: string; digest: string }) {
  await handToSandbox(dir);
  const options = containerOptions(
    toolRecipe(toolchain.digest, ['depmod', '-b', '/opt', kernel], '/'),
    toolRuntime(toolchain.repository, [{ host: dir, container: '/opt', readOnly: false }], {
      'kmatrix.role': 'kmm-depmod',
    }),
  );
  const lines: string[] = [];
  const r = await runInContainer(docker, options, { timeoutMs: 120_000, onLine: (l) => lines.push(l) });
  if (r.exitCode !== 0) {
    throw new KmatrixError(`depmod for ${kernel} failed (exit ${r.exitCode})`, {
      stage: 'publish',
      problems: lines.slice(-5),
      remedy: "check the toolchain image has kmod's depmod (`npx kmatrix toolchain build NAME`)",
    });
  }
}

export interface KmodImageInput {
  target: Pick<TargetSpec, 'name' | 'kernelrelease' | 'arch'>;
  /** The module files as published: file name → bytes (signed ones when publishing signs). */
  modules: Map<string, Buffer>;
  /** The guest's static busybox for the target's arch. */
  busybox: Buffer;
  toolchain: { repository: string; digest: string };
  docker: Docker;
}

/** Builds the image and pushes it to `repository` tagged with the kernel; its manifest digest. */
export async function pushKmodImage(
  repository: string,
  input: KmodImageInput,
): Promise<{ tag: string; digest: string }> {
  const kernel = kmmKernel(input.target.kernelrelease);
  const work = await mkdtemp(join(tmpdir(), 'kmatrix-kmod-'));
  try {
    const root = join(work, 'root');
    const moddir = join(root, 'opt/lib/modules', kernel);
    await mkdir(moddir, { recursive: true });
    await mkdir(join(root, 'bin'));
    await writeFile(join(root, 'bin/busybox'), input.busybox);
    await chmod(join(root, 'bin/busybox'), 0o755);
    for (const tool of ['sh', 'mkdir', 'cp']) await symlink('busybox', join(root, 'bin', tool));
    for (const [file, bytes] of input.modules) await writeFile(join(moddir, file), bytes, { mode: 0o644 });
    await depmod(input.docker, join(root, 'opt'), kernel, input.toolchain);
    for (const f of await readdir(moddir)) await chmod(join(moddir, f), 0o644);
    for (const d of ['bin', 'opt', 'opt/lib', 'opt/lib/modules', `opt/lib/modules/${kernel}`])
      await chmod(join(root, d), 0o755);
    const layer = join(work, 'layer.tar');
    await layerOf(root, layer);
    const descriptor = await fileDigest(layer);
    const tag = kmmTag(input.target.kernelrelease);
    const digest = await pushImage(repository, tag, {
      layers: [{ file: layer, descriptor }],
      config: {
        architecture: OCI_ARCH[input.target.arch],
        os: 'linux',
        config: { Labels: { 'io.kmatrix.target': input.target.name, 'io.kmatrix.kernel': kernel } },
        rootfs: { type: 'layers', diff_ids: [descriptor.digest] },
      },
    });
    return { tag, digest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
