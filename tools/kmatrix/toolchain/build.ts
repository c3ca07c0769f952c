/**
 * `kmatrix toolchain build <name>`: base image → `docker build` (dockerode) → push to the OCI
 * registry → the pushed manifest digest written to toolchain.lock.json. Idempotent: an image built
 * from the same Dockerfile and toolchain.json that is already in the registry is reused.
 */
import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { arch as osArch } from 'node:os';
import { dirname, join } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { stableJson, writeFileAtomic } from '../core/atomic-file.ts';
import { withLock } from '../core/file-lock.ts';
import { followProgress, imageExists } from '../core/docker.ts';
import type { DistroFamily } from '../distros/family.ts';
import { crossTriplets, dockerfileOf, lockSchema, type Toolchain, type ToolchainLock } from '../model/toolchain.ts';

export const CONTEXT_LABEL = 'io.kmatrix.toolchain.context';

export function registryAddress(env: NodeJS.ProcessEnv = process.env): string {
  return env.KMATRIX_REGISTRY ?? '127.0.0.1:5000';
}

export function repositoryFor(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return `${registryAddress(env)}/kmatrix/${name}`;
}

export async function contextHash(t: Toolchain): Promise<string> {
  const h = createHash('sha256');
  const toolchains = dirname(t.dir);
  for (const f of [dockerfileOf(t.name, t.spec), `${t.name}/toolchain.json`]) {
    h.update(`${f}\0`);
    h.update(await readFile(join(toolchains, f)));
  }
  return h.digest('hex');
}

/** A local image built from this exact context that also carries a digest in `repository`. */
async function findReusable(docker: Docker, repository: string, context: string): Promise<string | undefined> {
  const images = await docker.listImages({ filters: JSON.stringify({ label: [`${CONTEXT_LABEL}=${context}`] }) });
  for (const img of images) {
    const digest = (img.RepoDigests ?? []).find((d) => d.startsWith(`${repository}@`));
    if (digest) return digest.slice(repository.length + 1);
  }
  return undefined;
}

async function inRegistry(repository: string, digest: string): Promise<boolean> {
  const slash = repository.indexOf('/');
  const url = `http://${repository.slice(0, slash)}/v2/${repository.slice(slash + 1)}/manifests/${digest}`;
  try {
    const res = await fetch(url, {
      method: 'HEAD',
      headers: {
        accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
      },
      signal: AbortSignal.timeout(10_000),
    });
    return res.ok;
  } catch {
    return false;
  }
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
  docker: Docker;
  toolchain: Toolchain;
  /** The family of the toolchain's distro: it makes the base image. */
  family: DistroFamily;
  lockDir: string;
  force: boolean;
  log: (line: string) => void;
}

export async function buildToolchain(o: BuildToolchainOptions): Promise<{ lock: ToolchainLock; reused: boolean }> {
  const { docker, toolchain: t, log } = o;
  const machine = osArch() === 'arm64' ? 'aarch64' : osArch() === 'x64' ? 'x86_64' : osArch();
  if (t.spec.hostArch !== machine) {
    throw new KmatrixError(`toolchain ${t.name} runs on ${t.spec.hostArch} but this machine is ${machine}`, {
      stage: 'toolchain',
      remedy: `build it on an ${t.spec.hostArch} runner (images are pinned by digest, so any runner can then pull it)`,
    });
  }
  const repository = repositoryFor(t.name);
  await assertRegistryUp(repository);
  const context = await contextHash(t);
  return withLock(
    join(o.lockDir, `toolchain-${t.name}`),
    () => log(`waiting for another kmatrix building ${t.name}…`),
    async () => {
      if (!o.force) {
        const pinned =
          t.lock?.contextSha256 === context && t.lock.repository === repository ? t.lock.digest : undefined;
        for (const digest of [pinned, await findReusable(docker, repository, context)]) {
          if (digest && (await inRegistry(repository, digest))) {
            const lock = lockSchema.parse({ repository, digest, contextSha256: context });
            await writeLock(t, lock);
            log(`toolchain ${t.name} is up to date: ${repository}@${digest}`);
            return { lock, reused: true };
          }
        }
      }
      const base = await o.family.baseImage(docker, t.spec.base.release, log, o.force);
      const dockerfile = dockerfileOf(t.name, t.spec);
      const buildargs = { BASE: base, GCC: t.spec.gcc, CROSS_TRIPLETS: crossTriplets(t.spec).join(' ') };
      log(
        `building ${repository} from toolchains/${dockerfile} (${Object.entries(buildargs)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')})`,
      );
      const tag = `${repository}:latest`;
      const build = await docker.buildImage(
        { context: dirname(t.dir), src: [dockerfile, `${t.name}/toolchain.json`] },
        {
          t: tag,
          dockerfile,
          buildargs,
          networkmode: 'host',
          labels: { [CONTEXT_LABEL]: context },
          rm: true,
          forcerm: true,
        },
      );
      try {
        await followProgress(docker, build, (e) => {
          const line = e.stream?.trimEnd();
          if (line && /^Step |^Successfully|^E: |error|^gcc/i.test(line)) log(`  ${line}`);
        });
      } catch (error) {
        throw new KmatrixError(`docker build of toolchain ${t.name} failed: ${(error as Error).message}`, {
          stage: 'toolchain',
          cause: error,
          remedy: `fix toolchains/${dockerfileOf(t.name, t.spec)}; the base image's package sources must be reachable from the host network`,
        });
      }
      if (!(await imageExists(docker, tag)))
        throw new KmatrixError(`docker build produced no ${tag}`, { stage: 'toolchain' });
      log(`pushing ${tag}`);
      let digest: string | undefined;
      await followProgress(docker, await docker.getImage(tag).push({ authconfig: {} }), (e) => {
        if (e.aux?.Digest) digest = e.aux.Digest;
      });
      if (!digest) throw new KmatrixError(`the registry did not report a digest for ${tag}`, { stage: 'toolchain' });
      const lock = lockSchema.parse({ repository, digest, contextSha256: context });
      await writeLock(t, lock);
      log(`pinned ${repository}@${digest} in toolchains/${t.name}/toolchain.lock.json`);
      return { lock, reused: false };
    },
  );
}

async function writeLock(t: Toolchain, lock: ToolchainLock): Promise<void> {
  await writeFileAtomic(join(t.dir, 'toolchain.lock.json'), stableJson(lock));
  t.lock = lock;
}
