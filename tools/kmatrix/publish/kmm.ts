/**
 * `kmatrix publish --kmm REGISTRY/REPO`: a KMM kmod image for every target in the published
 * index (kmod-image.ts), pushed once per set of module bytes and recorded in the index entry — so
 * the index says which image serves which kernel, and `kmatrix kmm manifest` maps exactly the
 * published kernels. Runs after the modules are published; reads them back from the store.
 */
import type Docker from 'dockerode';
import { KmatrixError } from '../core/errors.ts';
import { busyboxOf, type GuestLock } from '../model/guest-lock.ts';
import { loadToolchain, requireLock } from '../model/toolchain.ts';
import type { HeaderStore } from '../packages/store.ts';
import { guestBusybox } from '../boot/kernel-image.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { addToEntries, loadIndex, readPublishedModules, type PublishedTarget } from './published-index.ts';
import { kmmKernel, pushKmodImage } from './kmod-image.ts';

export interface KmmPublishOptions {
  root: string;
  store: ArtifactStore;
  /** REGISTRY/REPO the images go to, e.g. 127.0.0.1:5000/kmm/kmx-echo. */
  repository: string;
  docker: Docker;
  headers: HeaderStore;
  lock: GuestLock;
  log: (line: string) => void;
}

export async function publishKmm(o: KmmPublishOptions): Promise<{ pushed: string[]; unchanged: string[] }> {
  if (!/^[A-Za-z0-9.-]+(:\d+)?\/[a-z0-9]+([._/-][a-z0-9]+)*$/.test(o.repository)) {
    throw new KmatrixError(
      `--kmm ${o.repository} is not a repository (REGISTRY/NAME, e.g. 127.0.0.1:5000/kmm/kmx-echo)`,
      {
        stage: 'usage',
        remedy: 'name the registry host and the repository, without a tag',
      },
    );
  }
  const index = await loadIndex(o.store);
  const pushed = new Map<string, { buildId: string; fields: Partial<PublishedTarget> }>();
  const unchanged: string[] = [];
  const repositories = new Map<string, string>();
  for (const [name, entry] of Object.entries(index.targets).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (entry.kmm?.image.startsWith(`${o.repository}@`)) {
      unchanged.push(name);
      continue;
    }
    const { target } = entry;
    if (!repositories.has(target.toolchain.name))
      repositories.set(
        target.toolchain.name,
        requireLock(await loadToolchain(o.root, target.toolchain.name)).repository,
      );
    const { tag, digest } = await pushKmodImage(o.repository, {
      target,
      modules: await readPublishedModules(o.store, entry),
      busybox: await guestBusybox(o.headers, busyboxOf(o.lock, target.arch)),
      toolchain: { repository: repositories.get(target.toolchain.name)!, digest: target.toolchain.digest },
      docker: o.docker,
    });
    const kmm = { image: `${o.repository}@${digest}`, tag, kernel: kmmKernel(target.kernelrelease) };
    pushed.set(name, { buildId: entry.buildId, fields: { kmm } });
    o.log(`kmm ${name}  ${o.repository}:${tag}  ${digest}`);
  }
  await addToEntries(o.store, pushed);
  return { pushed: [...pushed.keys()], unchanged };
}
