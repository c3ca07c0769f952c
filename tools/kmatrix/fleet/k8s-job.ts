/**
 * The Kubernetes alternative to GitHub's matrix: one Indexed Job, one completion index per shard
 * (Kubernetes sets JOB_COMPLETION_INDEX in each pod), every pod building its shard with
 * `kmatrix shard` + `nx run-many` against the shared remote cache. Docker comes from a native
 * sidecar (an init container with restartPolicy Always) running dockerd, so dockerode talks to a
 * socket on a shared emptyDir and the node's own engine is never exposed to the build.
 */
import type { V1Job } from '@kubernetes/client-node';

export interface JobOptions {
  name: string;
  namespace: string;
  shards: number;
  parallelism: number;
  /** Node 22, git and npm: the image the GitHub runners run (tools/fleet/runner.Dockerfile). */
  image: string;
  dindImage: string;
  repository: string;
  revision: string;
  base?: string;
  cacheUrl?: string;
  /** Secret holding the cache token under key "token": write for main, read otherwise. */
  cacheSecret?: string;
  registry?: string;
  /** A Karpenter NodePool to run on (tools/fleet/karpenter/nodepool.yaml): selected, and its build taint tolerated. */
  nodePool?: string;
  labels?: Record<string, string>;
}

/** The taint the build NodePool carries so nothing else lands on its nodes. */
export const BUILD_TAINT = 'kmatrix.dev/build';

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The build script of one pod: check out, install, build this index's shard. */
export function shardScript(o: Pick<JobOptions, 'repository' | 'revision' | 'base' | 'shards'>): string {
  const range = o.base ? ` --base ${shellQuote(o.base)} --head ${shellQuote(o.revision)}` : '';
  return [
    'set -euo pipefail',
    `git clone --quiet ${shellQuote(o.repository)} /workspace/repo`,
    'cd /workspace/repo',
    `git checkout --quiet ${shellQuote(o.revision)}`,
    'npm ci --no-audit --no-fund',
    `projects="$(npx kmatrix shard --total ${o.shards} --index "$JOB_COMPLETION_INDEX"${range})"`,
    'if [ -n "$projects" ]; then npx nx run-many -t build-driver --batch --projects="$projects"; fi',
  ].join('\n');
}

export function indexedJob(o: JobOptions): V1Job {
  const labels = {
    'app.kubernetes.io/name': 'kmatrix',
    'app.kubernetes.io/component': 'build',
    'kmatrix.dev/revision': o.revision.slice(0, 40),
    ...o.labels,
  };
  const env = [
    { name: 'DOCKER_HOST', value: 'unix:///var/run/dind/docker.sock' },
    { name: 'NX_DAEMON', value: 'false' },
    { name: 'NX_NO_CLOUD', value: 'true' },
    { name: 'NX_TUI', value: 'false' },
    ...(o.registry ? [{ name: 'KMATRIX_REGISTRY', value: o.registry }] : []),
    ...(o.cacheUrl ? [{ name: 'NX_SELF_HOSTED_REMOTE_CACHE_SERVER', value: o.cacheUrl }] : []),
    ...(o.cacheSecret
      ? [
          {
            name: 'NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN',
            valueFrom: { secretKeyRef: { name: o.cacheSecret, key: 'token' } },
          },
        ]
      : []),
  ];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: o.name, namespace: o.namespace, labels },
    spec: {
      completionMode: 'Indexed',
      completions: o.shards,
      parallelism: Math.min(o.parallelism, o.shards),
      // A shard that fails twice is a failed index; the others go on (their builds are cached).
      backoffLimitPerIndex: 1,
      maxFailedIndexes: o.shards,
      ttlSecondsAfterFinished: 7 * 24 * 3600,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          ...(o.nodePool
            ? {
                nodeSelector: { 'karpenter.sh/nodepool': o.nodePool },
                tolerations: [{ key: BUILD_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
              }
            : {}),
          volumes: [
            { name: 'workspace', emptyDir: {} },
            { name: 'dind-socket', emptyDir: {} },
            { name: 'dind-storage', emptyDir: {} },
          ],
          initContainers: [
            {
              name: 'dockerd',
              image: o.dindImage,
              restartPolicy: 'Always',
              args: ['--host=unix:///var/run/dind/docker.sock', '--iptables=false', '--bridge=none'],
              securityContext: { privileged: true },
              volumeMounts: [
                { name: 'dind-socket', mountPath: '/var/run/dind' },
                { name: 'dind-storage', mountPath: '/var/lib/docker' },
              ],
              startupProbe: {
                exec: { command: ['docker', '--host=unix:///var/run/dind/docker.sock', 'version'] },
                periodSeconds: 2,
                failureThreshold: 60,
              },
            },
          ],
          containers: [
            {
              name: 'build',
              image: o.image,
              command: ['bash', '-c', shardScript(o)],
              env,
              resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '8Gi' } },
              volumeMounts: [
                { name: 'workspace', mountPath: '/workspace' },
                { name: 'dind-socket', mountPath: '/var/run/dind' },
              ],
            },
          ],
        },
      },
    },
  };
}
