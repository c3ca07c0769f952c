/**
 * The one adapter to the Docker engine (dockerode, never the docker CLI): connecting with a clear
 * remedy, making sure an image is present, and following the engine's JSON progress streams,
 * whose errors arrive as messages inside a 200 response and must be checked by hand.
 */
import Docker from 'dockerode';
import { KmatrixError } from './errors.ts';

export function dockerSocket(env: NodeJS.ProcessEnv = process.env): string {
  const host = env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  return '/var/run/docker.sock';
}

export async function connectDocker(env: NodeJS.ProcessEnv = process.env): Promise<Docker> {
  const socketPath = dockerSocket(env);
  const docker = new Docker({ socketPath });
  try {
    await docker.ping();
  } catch (error) {
    throw new KmatrixError(`Docker engine not reachable at ${socketPath}`, {
      stage: 'docker',
      cause: error,
      remedy:
        'start it with `dockerd --iptables=false --bridge=none &` (or `systemctl start docker`; `bash tools/setup-host.sh` installs and starts it), or point DOCKER_HOST=unix:///path/to/docker.sock at a running engine',
    });
  }
  return docker;
}

export interface ProgressEvent {
  status?: string;
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string; Tag?: string };
}

/** Follows a progress stream to its end; throws on an in-stream error. */
export function followProgress(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onEvent: (event: ProgressEvent) => void = () => {},
): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null, events: ProgressEvent[]) => {
        if (error) return reject(error);
        const failed = events.find((e) => e.error || e.errorDetail);
        if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error));
        resolve(events);
      },
      onEvent,
    );
  });
}

export async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw error;
  }
}

/** Makes `ref` (repository@digest) present locally, pulling it from its registry if needed. */
export async function ensureImage(docker: Docker, ref: string, remedy: string): Promise<void> {
  if (await imageExists(docker, ref)) return;
  try {
    await followProgress(docker, await docker.pull(ref));
  } catch (error) {
    throw new KmatrixError(
      `toolchain image ${ref} is not on this engine and could not be pulled: ${(error as Error).message}`,
      {
        stage: 'toolchain',
        cause: error,
        remedy,
      },
    );
  }
}
