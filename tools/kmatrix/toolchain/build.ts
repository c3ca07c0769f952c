/**
 * `kmatrix toolchain build <name>`: the distro's family writes the toolchain's root filesystem as
 * one reproducible tarball, which becomes a one-layer OCI image pushed straight to the registry
 * (core/oci-registry.ts). Its manifest digest and every package version go to
 * toolchain.lock.json. The same toolchain.json and package versions give the same digest on any
 * machine, into any registry: a fresh runner reproduces the committed lock instead of re-pinning.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { arch as osArch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { stableJson, writeFileAtomic } from '../core/atomic-file.ts';
import { withLock } from '../core/file-lock.ts';
import { fileDigest, hasManifest, pushImage } from '../core/oci-registry.ts';
import type { DistroFamily } from '../distros/family.ts';
import { lockSchema, packageChanges, repositoryFor, type Toolchain, type ToolchainLock } from '../model/toolchain.ts';

/** Bump when the image's layout changes for the same toolchain.json (its digest would change). */
export const IMAGE_FORMAT = 'kmatrix-toolchain-image/1';

/** What an image is made from besides package versions: toolchain.json and the image format. */
export async function contextHash(t: Toolchain): Promise<string> {
  const h = createHash('sha256');
  h.update(`${IMAGE_FORMAT}\0`);
  h.update(await readFile(join(t.dir, 'toolchain.json')));
  return h.digest('hex');
}

export async function assertRegistryUp(repository: string): Promise<void> {
  const host = repository.slice(0, repository.indexOf('/'));
  try {
    const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(5_000) });
    if (res.status === 200 || res.status === 401) return;
    throw new Error(`HTTP ${res.status}`);
  } catch (error) {
    throw new KmatrixError(`no OCI registry answers at http://${host}/v2/ (${(error as Error).message})`, {
      stage: 'toolchain',
      cause: error,
      remedy:
        "start one: `bash tools/setup-host.sh` runs Debian's docker-registry on 127.0.0.1:5000; or set KMATRIX_REGISTRY=host:port",
    });
  }
}

export interface BuildToolchainOptions {
  toolchain: Toolchain;
  /** The family of the toolchain's distro: it makes the root filesystem. */
  family: DistroFamily;
  lockDir: string;
  /** Build even when the registry has the pinned image. */
  force: boolean;
  /** Accept package versions other than the lock's (the archive moved on): re-pin. */
  update: boolean;
  log: (line: string) => void;
}

const dockerArch = { x86_64: 'amd64', aarch64: 'arm64' } as const;

/** The image config: fixed timestamps and key order, nothing of the machine that built it. */
function imageConfig(t: Toolchain, diffId: string): Record<string, unknown> {
  const created = IMAGE_CREATED;
  return {
    architecture: dockerArch[t.spec.hostArch],
    os: 'linux',
    created,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL=C'],
      Cmd: ['bash'],
      Labels: { 'io.kmatrix.toolchain': t.name },
    },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: `${IMAGE_FORMAT} ${t.name}` }],
  };
}

/** The image's creation time: a constant (a clock reading would make every build a new digest). */
const IMAGE_CREATED = new Date(1_700_000_000_000).toISOString();

export async function buildToolchain(
  o: BuildToolchainOptions,
): Promise<{ lock: ToolchainLock; repository: string; reused: boolean }> {
  const { toolchain: t, log } = o;
  const machine = osArch() === 'arm64' ? 'aarch64' : osArch() === 'x64' ? 'x86_64' : osArch();
  if (t.spec.hostArch !== machine) {
    throw new KmatrixError(`toolchain ${t.name} runs on ${t.spec.hostArch} but this machine is ${machine}`, {
      stage: 'toolchain',
      remedy: `build it on an ${t.spec.hostArch} runner (images are pinned by digest, so any runner can then pull it)`,
    });
  }
  // The lock names no registry unless it must: the same digest is pulled from this site's.
  const repository = t.lock?.repository ?? repositoryFor(t.name);
  await assertRegistryUp(repository);
  const context = await contextHash(t);
  return withLock(
    join(o.lockDir, `toolchain-${t.name}`),
    () => log(`waiting for another kmatrix building ${t.name}…`),
    async () => {
      const pinned = t.lock?.contextSha256 === context ? t.lock : undefined;
      if (!o.force && !o.update && pinned && (await hasManifest(repository, pinned.digest))) {
        log(`toolchain ${t.name} is up to date: ${repository}@${pinned.digest}`);
        return { lock: pinned, repository, reused: true };
      }
      const lock = await buildAndPush(o, repository, context);
      const same = t.lock?.contextSha256 === context ? t.lock : undefined;
      if (same?.packages && !o.update) {
        const changes = packageChanges(same.packages, lock.packages ?? {});
        if (changes.length > 0) {
          throw new KmatrixError(
            `the archive no longer serves the package versions toolchain ${t.name} is pinned to; nothing was written`,
            {
              stage: 'toolchain',
              problems: changes,
              remedy: `re-pin with \`npx kmatrix toolchain build ${t.name} --update\`, then \`npx kmatrix gen\` (\`npx kmatrix diff\` shows the targets it changes)`,
            },
          );
        }
      }
      await writeLock(t, lock);
      log(`pinned ${repository}@${lock.digest} in toolchains/${t.name}/toolchain.lock.json`);
      return { lock, repository, reused: false };
    },
  );
}

async function buildAndPush(o: BuildToolchainOptions, repository: string, context: string): Promise<ToolchainLock> {
  const { toolchain: t, log } = o;
  const dir = await mkdtemp(join(tmpdir(), `kmatrix-toolchain-${t.name}-`));
  try {
    const layer = join(dir, 'rootfs.tar');
    const packages = await o.family.toolchainRootfs(t.spec, layer, log);
    const descriptor = await fileDigest(layer);
    log(
      `pushing ${repository} (${(descriptor.size / 2 ** 20).toFixed(0)} MiB, ${Object.keys(packages).length} packages)`,
    );
    const digest = await pushImage(
      repository,
      'latest',
      {
        layers: [{ file: layer, descriptor }],
        config: imageConfig(t, descriptor.digest),
      },
      log,
    );
    return lockSchema.parse({
      ...(t.lock?.repository ? { repository } : {}),
      digest,
      contextSha256: context,
      packages,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function writeLock(t: Toolchain, lock: ToolchainLock): Promise<void> {
  await writeFileAtomic(join(t.dir, 'toolchain.lock.json'), stableJson(lock));
  t.lock = lock;
}
