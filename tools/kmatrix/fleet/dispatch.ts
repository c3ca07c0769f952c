/**
 * Creating the Indexed Job through the Kubernetes API (@kubernetes/client-node, the kubeconfig's
 * cluster, user and namespace), and optionally following it to the end. API errors are turned
 * into what to do: 401/403 (RBAC), 404 (namespace), 409 (this revision is already dispatched).
 */
import { BatchV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { KmatrixError } from '../core/errors.ts';

export function kubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (error) {
    throw new KmatrixError(`cannot read the kubeconfig${file ? ` ${file}` : ''}: ${(error as Error).message}`, {
      stage: 'dispatch',
      remedy: 'pass --kubeconfig FILE or set KUBECONFIG',
    });
  }
  if (!kc.getCurrentCluster())
    throw new KmatrixError('the kubeconfig has no current cluster', {
      stage: 'dispatch',
      remedy: 'kubectl config use-context CONTEXT, or pass --kubeconfig FILE',
    });
  return kc;
}

/** The namespace of the kubeconfig's current context, else "default". */
export const contextNamespace = (kc: KubeConfig) => kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';

function apiError(error: unknown, job: V1Job, server: string): KmatrixError {
  const e = error as { code?: number; body?: unknown; message?: string; cause?: { code?: string } };
  const status = e.code;
  const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? '');
  const message = (() => {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  })();
  const name = `${job.metadata!.namespace}/${job.metadata!.name}`;
  if (status === 409)
    return new KmatrixError(`job ${name} already exists: this revision is already dispatched`, {
      stage: 'dispatch',
      remedy: `follow it with kubectl -n ${job.metadata!.namespace} get job ${job.metadata!.name}, or pass --name to dispatch again`,
    });
  if (status === 401 || status === 403)
    return new KmatrixError(`the cluster refused to create ${name} (${status}): ${message}`, {
      stage: 'dispatch',
      remedy: 'the kubeconfig user needs create/get on jobs.batch in that namespace (a Role and RoleBinding)',
    });
  if (status === 404)
    return new KmatrixError(`no namespace ${job.metadata!.namespace} (404): ${message}`, {
      stage: 'dispatch',
      remedy: 'create it, or pass --namespace',
    });
  if (status)
    return new KmatrixError(`the Kubernetes API answered ${status} creating ${name}: ${message}`, {
      stage: 'dispatch',
    });
  return new KmatrixError(`cannot reach the Kubernetes API at ${server}: ${e.cause?.code ?? e.message}`, {
    stage: 'dispatch',
    remedy: "check the kubeconfig's cluster address and your network",
  });
}

export async function createJob(kc: KubeConfig, job: V1Job): Promise<V1Job> {
  const api = kc.makeApiClient(BatchV1Api);
  try {
    // Strict: a field the API does not know is an error, never silently dropped.
    return await api.createNamespacedJob({
      namespace: job.metadata!.namespace!,
      body: job,
      fieldValidation: 'Strict',
      fieldManager: 'kmatrix',
    });
  } catch (error) {
    throw apiError(error, job, kc.getCurrentCluster()!.server);
  }
}

export interface JobProgress {
  succeeded: number;
  failed: number;
  active: number;
  failedIndexes?: string;
  done: boolean;
  ok: boolean;
}

/** Polls the Job's status until it completes or fails, reporting each change. */
export async function followJob(
  kc: KubeConfig,
  job: V1Job,
  onChange: (p: JobProgress) => void,
  intervalMs = 5000,
): Promise<JobProgress> {
  const api = kc.makeApiClient(BatchV1Api);
  let last = '';
  for (;;) {
    let current: V1Job;
    try {
      current = await api.readNamespacedJobStatus({ name: job.metadata!.name!, namespace: job.metadata!.namespace! });
    } catch (error) {
      throw apiError(error, job, kc.getCurrentCluster()!.server);
    }
    const s = current.status ?? {};
    const conditions = s.conditions ?? [];
    const complete = conditions.some((c) => c.type === 'Complete' && c.status === 'True');
    const failed = conditions.some((c) => c.type === 'Failed' && c.status === 'True');
    const p: JobProgress = {
      succeeded: s.succeeded ?? 0,
      failed: s.failed ?? 0,
      active: s.active ?? 0,
      ...(s.failedIndexes ? { failedIndexes: s.failedIndexes } : {}),
      done: complete || failed,
      ok: complete,
    };
    const key = JSON.stringify(p);
    if (key !== last) onChange(p);
    last = key;
    if (p.done) return p;
    await sleep(intervalMs);
  }
}
