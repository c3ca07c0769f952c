/**
 * `kmatrix dispatch --k8s` with no Kubernetes here: the Job it creates is checked against the
 * Kubernetes API's schema (kubernetes-models, generated from the OpenAPI spec), and the dispatch
 * itself talks to a real HTTP server on 127.0.0.1 that records the API calls and answers as the
 * API server does (201, then the Job's status; 409, 403).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { indexedJob } from '../../tools/kmatrix/fleet/k8s-job.ts';
import { startServer } from '../support/http.ts';
import { createWorkspace, expectOk, repoRoot } from '../support/workspace.ts';

interface Recorded {
  method: string;
  url: string;
  authorization?: string;
  body?: unknown;
}

const IMAGE = `registry.internal/kmatrix-runner@sha256:${'a'.repeat(64)}`;

test('the Indexed Job is valid against the Kubernetes API schema, and the validator does catch mistakes', () => {
  const job = indexedJob({
    name: 'kmatrix-build-0123456789ab',
    namespace: 'builds',
    shards: 12,
    parallelism: 4,
    image: IMAGE,
    dindImage: 'docker:27-dind',
    repository: 'https://github.com/acme/drivers',
    revision: 'b'.repeat(40),
    base: 'c'.repeat(40),
    cacheUrl: 'http://cache:3300',
    cacheSecret: 'kmatrix-cache',
    registry: 'registry.internal:5000',
    nodePool: 'kmatrix-build',
  });
  new Job(job as never).validate();
  assert.deepEqual(job.spec!.template.spec!.nodeSelector, { 'karpenter.sh/nodepool': 'kmatrix-build' });
  assert.equal(job.spec!.completionMode, 'Indexed');
  assert.equal(job.spec!.completions, 12);
  assert.equal(job.spec!.parallelism, 4);
  const broken = structuredClone(job) as {
    spec: { completions: unknown; template: { spec: { restartPolicy: string } } };
  };
  broken.spec.completions = '12';
  broken.spec.template.spec.restartPolicy = 'Sometimes';
  assert.throws(
    () => new Job(broken as never).validate(),
    /completions must be integer[\s\S]*restartPolicy must be equal to one of the allowed values/,
  );
});

test('dispatch --k8s creates the Job through the API, follows it to the end, and explains refusals', {
  timeout: 5 * 60_000,
}, async (t) => {
  const ws = await createWorkspace('kmatrix-dispatch-');
  t.after(() => ws.remove());
  await cp(join(repoRoot, 'targets'), join(ws.dir, 'targets'), { recursive: true });
  await ws.git(['remote', 'add', 'origin', 'https://github.com/acme/drivers.git']);
  await ws.commitAll('targets');
  const head = (await ws.git(['rev-parse', 'HEAD'])).stdout.trim();

  const calls: Recorded[] = [];
  const jobs = new Map<string, unknown>();
  const api = await startServer((req, res, hit) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      calls.push({
        method: req.method!,
        url: req.url!,
        authorization: req.headers.authorization,
        ...(text ? { body: JSON.parse(text) } : {}),
      });
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const create = req.url!.match(/^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs\?/);
      if (req.method === 'POST' && create) {
        if (create[1] === 'locked-down')
          return reply(403, {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            message:
              'jobs.batch is forbidden: User "ci" cannot create resource "jobs" in API group "batch" in the namespace "locked-down"',
            reason: 'Forbidden',
            code: 403,
          });
        const body = JSON.parse(text) as { metadata: { name: string } };
        if (jobs.has(body.metadata.name))
          return reply(409, {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            message: `jobs.batch "${body.metadata.name}" already exists`,
            reason: 'AlreadyExists',
            code: 409,
          });
        jobs.set(body.metadata.name, body);
        return reply(201, {
          ...body,
          metadata: { ...body.metadata, uid: 'c0ffee', creationTimestamp: '2026-11-29T00:00:00Z' },
        });
      }
      const status = req.url!.match(/^\/apis\/batch\/v1\/namespaces\/[^/]+\/jobs\/([^/?]+)\/status/);
      if (req.method === 'GET' && status && jobs.has(status[1]!)) {
        const done = hit >= 2;
        return reply(200, {
          ...(jobs.get(status[1]!) as object),
          status: done ? { succeeded: 3, conditions: [{ type: 'Complete', status: 'True' }] } : { active: 3 },
        });
      }
      reply(404, { kind: 'Status', code: 404, message: 'not found' });
    });
  });
  t.after(() => api.close());
  const scratch = await mkdtemp(join(tmpdir(), 'kmatrix-kubeconfig-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const kubeconfig = join(scratch, 'config');
  // Plain HTTP on loopback: the client allows it only with insecure-skip-tls-verify.
  await writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: loop',
      `clusters: [{name: loop, cluster: {server: "${api.url}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: ci, user: {token: dispatch-token-123}}]',
      'contexts: [{name: loop, context: {cluster: loop, user: ci, namespace: builds}}]',
      '',
    ].join('\n'),
  );

  const dispatch = await ws.kmatrix([
    'dispatch',
    '--k8s',
    '--shards',
    '3',
    '--image',
    IMAGE,
    '--cache-url',
    'http://cache.internal:3300',
    '--kubeconfig',
    kubeconfig,
    '--wait',
    '--poll',
    '1',
  ]);
  assert.equal(dispatch.exitCode, 0, dispatch.all);
  assert.match(
    dispatch.stdout,
    new RegExp(`created job builds/kmatrix-build-${head.slice(0, 12)}: 3 shards of ${head.slice(0, 12)}`),
  );
  assert.match(dispatch.stderr, /0\/3 shards done, 3 running, 0 failed\n3\/3 shards done, 0 running, 0 failed/);
  assert.match(dispatch.stdout, /job complete: 3\/3 shards/);

  const post = calls.find((c) => c.method === 'POST')!;
  assert.match(post.url, /^\/apis\/batch\/v1\/namespaces\/builds\/jobs\?/);
  assert.match(post.url, /fieldValidation=Strict/);
  assert.equal(post.authorization, 'Bearer dispatch-token-123');
  // What went over the wire is a valid Job, and exactly the one kmatrix built: nothing was
  // dropped by the client's serializer as a field the API does not know.
  new Job(post.body as never).validate();
  // The fields that make it work, written out here rather than rebuilt with the code under test.
  const job = post.body as {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace: string };
    spec: Record<string, unknown> & { template: { spec: Record<string, unknown> & PodParts } };
  };
  type Env = { name: string; value?: string; valueFrom?: unknown };
  type PodParts = {
    initContainers: {
      image: string;
      restartPolicy: string;
      securityContext: unknown;
      args: string[];
      volumeMounts: { mountPath: string }[];
    }[];
    containers: { image: string; env: Env[]; resources: unknown; volumeMounts: { mountPath: string }[] }[];
    tolerations?: unknown;
    nodeSelector?: unknown;
  };
  assert.equal(job.apiVersion, 'batch/v1');
  assert.equal(job.kind, 'Job');
  assert.deepEqual(job.metadata.name, `kmatrix-build-${head.slice(0, 12)}`);
  assert.equal(job.metadata.namespace, 'builds');
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.spec.completions, 3);
  assert.equal(job.spec.parallelism, 3);
  assert.equal(job.spec.backoffLimitPerIndex, 1);
  const pod = job.spec.template.spec;
  assert.equal(pod.restartPolicy, 'Never');
  assert.equal(pod.tolerations, undefined, 'no node pool asked for: no toleration');
  assert.equal(pod.nodeSelector, undefined);
  const [sidecar] = pod.initContainers;
  assert.equal(sidecar!.image, 'docker:27-dind');
  assert.equal(sidecar!.restartPolicy, 'Always', 'a native sidecar');
  assert.deepEqual(sidecar!.securityContext, { privileged: true });
  assert.ok(sidecar!.args.includes('--host=unix:///var/run/dind/docker.sock'));
  const [build] = pod.containers;
  assert.equal(build!.image, IMAGE);
  const env = Object.fromEntries(build!.env.map((e) => [e.name, e.value ?? e.valueFrom]));
  assert.equal(env.DOCKER_HOST, 'unix:///var/run/dind/docker.sock');
  assert.equal(env.NX_SELF_HOSTED_REMOTE_CACHE_SERVER, 'http://cache.internal:3300');
  assert.deepEqual(env.NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN, {
    secretKeyRef: { name: 'kmatrix-cache', key: 'token' },
  });
  assert.deepEqual(build!.resources, { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '8Gi' } });
  // The build reaches dockerd through the socket folder both containers mount.
  assert.ok(build!.volumeMounts.some((m) => m.mountPath === '/var/run/dind'));
  assert.ok(sidecar!.volumeMounts.some((m) => m.mountPath === '/var/run/dind'));
  const script = (post.body as { spec: { template: { spec: { containers: { command: string[] }[] } } } }).spec.template
    .spec.containers[0]!.command[2]!;
  assert.match(script, /npx kmatrix shard --total 3 --index "\$JOB_COMPLETION_INDEX"/);
  assert.match(script, new RegExp(`git checkout --quiet '${head}'`));

  // The same revision again: the API says it exists; kmatrix says what that means.
  const again = await ws.kmatrix(['dispatch', '--k8s', '--shards', '3', '--image', IMAGE, '--kubeconfig', kubeconfig]);
  assert.equal(again.exitCode, 1);
  assert.match(again.stderr, /already exists: this revision is already dispatched[\s\S]*kubectl -n builds get job/);
  const forbidden = await ws.kmatrix([
    'dispatch',
    '--k8s',
    '--shards',
    '3',
    '--image',
    IMAGE,
    '--kubeconfig',
    kubeconfig,
    '--namespace',
    'locked-down',
    '--name',
    'kmatrix-other',
  ]);
  assert.equal(forbidden.exitCode, 1);
  assert.match(
    forbidden.stderr,
    /refused to create locked-down\/kmatrix-other \(403\): jobs.batch is forbidden[\s\S]*Role and RoleBinding/,
  );

  // Planned from the affected tasks: a change to one target → one shard; no change → no Job.
  const [file] = (await ws.git(['ls-files', 'targets'])).stdout.split('\n');
  await ws.write(file!, (await ws.read(file!)).replace('"strictCompiler": false', '"strictCompiler": true'));
  await ws.commitAll('one target');
  const planned = expectOk(
    await ws.kmatrix(['dispatch', '--k8s', '--base', 'HEAD~1', '--image', IMAGE, '--kubeconfig', kubeconfig]),
    'dispatch planned',
  );
  assert.match(planned.stderr, /1 task to run → 1 shard/);
  const nothing = expectOk(
    await ws.kmatrix(['dispatch', '--k8s', '--base', 'HEAD', '--image', IMAGE, '--kubeconfig', kubeconfig]),
    'dispatch nothing',
  );
  assert.match(nothing.stderr, /nothing to build: no Job created/);
  assert.equal(calls.filter((c) => c.method === 'POST').length, 4, 'created, 409, 403, planned: no POST for nothing');
});
