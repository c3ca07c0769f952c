import { resolve } from 'node:path';
import { dispatchPlan } from '../fleet/dispatch-plan.ts';
import { indexedJob } from '../fleet/k8s-job.ts';
import { defineCommand, log, wholeNumber } from './command.ts';

const about = `Runs a build on Kubernetes without GitHub: one Indexed Job with one completion index per shard.
Each pod clones the repository at HEAD's commit, runs \`npm ci\`, takes its shard with
\`kmatrix shard --total N --index $JOB_COMPLETION_INDEX\` and builds it with
\`nx run-many -t build-driver --batch\`; all pods share the remote cache, so what one built the
others (and CI, and developers) restore. Docker is a dockerd sidecar in each pod (privileged).

The number of shards is --shards, or planned like \`kmatrix shard --plan\` from the tasks to run
and their recorded build times. Nothing to build: no Job (exit 0).
`;

export const dispatchCommand = defineCommand({
  name: 'dispatch',
  summary: 'run a sharded build as a Kubernetes Indexed Job sharing the remote cache',
  about,
  options: {
    k8s: { type: 'boolean', default: false, required: true, help: 'the backend: Kubernetes (the only one)' },
    base: {
      type: 'string',
      value: 'REF',
      help: 'build only what changed since REF (nx affected); default: everything',
    },
    head: { type: 'string', default: 'HEAD', value: 'REF', help: 'the commit to build (it must be pushed to --repo)' },
    shards: { type: 'string', value: 'N', help: 'completions (default: planned, at most --max-shards)' },
    'max-shards': { type: 'string', default: '16', value: 'N', help: 'the most shards a plan may have' },
    parallelism: { type: 'string', value: 'N', help: 'pods at once (default: all shards)' },
    namespace: { type: 'string', value: 'NS', help: "default: the kubeconfig context's namespace" },
    name: { type: 'string', value: 'NAME', help: 'Job name (default kmatrix-build-<commit>)' },
    image: {
      type: 'string',
      required: true,
      default: process.env.KMATRIX_RUNNER_IMAGE,
      value: 'IMG',
      help: `runner image with Node, npm and git (default $KMATRIX_RUNNER_IMAGE;
        tools/fleet/runner.Dockerfile)`,
    },
    'dind-image': { type: 'string', default: 'docker:27-dind', value: 'IMG', help: 'dockerd sidecar image' },
    repo: { type: 'string', value: 'URL', help: 'repository the pods clone (default: git remote origin)' },
    'cache-url': {
      type: 'string',
      default: process.env.NX_SELF_HOSTED_REMOTE_CACHE_SERVER,
      value: 'URL',
      help: 'remote cache (default $NX_SELF_HOSTED_REMOTE_CACHE_SERVER)',
    },
    'cache-secret': {
      type: 'string',
      default: 'kmatrix-cache',
      value: 'NAME',
      help: 'Secret with the cache token under key "token"',
    },
    registry: {
      type: 'string',
      default: process.env.KMATRIX_REGISTRY,
      value: 'ADDR',
      help: 'toolchain registry (default $KMATRIX_REGISTRY)',
    },
    'node-pool': {
      type: 'string',
      value: 'NAME',
      help: `run on this Karpenter NodePool (nodeSelector karpenter.sh/nodepool,
        tolerating its kmatrix.dev/build taint), e.g. kmatrix-build`,
    },
    kubeconfig: {
      type: 'string',
      path: true,
      value: 'FILE',
      help: 'default: $KUBECONFIG, ~/.kube/config, or in-cluster',
    },
    'dry-run': { type: 'boolean', default: false, help: 'print the Job (JSON) and create nothing' },
    wait: { type: 'boolean', default: false, help: 'follow the Job to its end (exit 1 if an index failed)' },
    poll: { type: 'string', default: '5', value: 'S', help: 'seconds between status checks with --wait' },
  },
  async run({ values }) {
    const count = (name: string, text: string | undefined) => wholeNumber('dispatch', name, text);
    const root = resolve('.');
    const plan = await dispatchPlan(root, {
      head: values.head,
      ...(values.base ? { base: values.base } : {}),
      ...(values.repo ? { repository: values.repo } : {}),
      ...(values.shards ? { shards: count('--shards', values.shards)! } : {}),
      maxShards: count('--max-shards', values['max-shards'])!,
    });
    const { head, base, repository, shards } = plan;
    if (plan.tasks !== undefined)
      log(`${plan.tasks} task${plan.tasks === 1 ? '' : 's'} to run → ${shards} shard${shards === 1 ? '' : 's'}`);
    if (shards === 0) {
      log('nothing to build: no Job created');
      return 0;
    }
    // The Kubernetes client takes ~0.6 s to load: only this command pays for it, and only when it talks to a cluster.
    const k8s =
      values['dry-run'] && !values.kubeconfig && !values.namespace ? undefined : await import('../fleet/dispatch.ts');
    const kc = k8s?.kubeConfig(values.kubeconfig);
    const job = indexedJob({
      name: values.name ?? `kmatrix-build-${head.slice(0, 12)}`,
      namespace: values.namespace ?? (kc && k8s ? k8s.contextNamespace(kc) : 'default'),
      shards,
      parallelism: count('--parallelism', values.parallelism) ?? shards,
      image: values.image!, // required: checked before run
      dindImage: values['dind-image'],
      repository,
      revision: head,
      ...(base ? { base } : {}),
      ...(values['cache-url'] ? { cacheUrl: values['cache-url'], cacheSecret: values['cache-secret'] } : {}),
      ...(values.registry ? { registry: values.registry } : {}),
      ...(values['node-pool'] ? { nodePool: values['node-pool'] } : {}),
    });
    if (values['dry-run']) {
      process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
      return 0;
    }
    const created = await k8s!.createJob(kc!, job);
    process.stdout.write(
      `created job ${created.metadata?.namespace}/${created.metadata?.name}: ${shards} shard${shards === 1 ? '' : 's'} of ${head.slice(0, 12)}${base ? ` (changes since ${base.slice(0, 12)})` : ''}\n`,
    );
    if (!values.wait) return 0;
    const end = await k8s!.followJob(kc!, job, (p) =>
      log(
        `${p.succeeded}/${shards} shards done, ${p.active} running, ${p.failed} failed${p.failedIndexes ? ` (indexes ${p.failedIndexes})` : ''}`,
      ),
    );
    process.stdout.write(
      end.ok
        ? `job complete: ${end.succeeded}/${shards} shards\n`
        : `job failed${end.failedIndexes ? `: shards ${end.failedIndexes}` : ''}\n`,
    );
    return end.ok ? 0 : 1;
  },
});
