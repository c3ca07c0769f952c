/**
 * The Kubernetes side of the fleet (tools/fleet/), checked without a cluster: every manifest
 * against its API schema (kubernetes-models and @kubernetes-models/karpenter, generated from the
 * OpenAPI specs and CRDs), and the cross-references that make runners actually schedule — the
 * scale set name the workflows ask for, the NodePool the runners select and tolerate, limits
 * that fit maxRunners.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { NodePool } from '@kubernetes-models/karpenter/karpenter.sh/v1/NodePool';
import { EC2NodeClass } from '@kubernetes-models/karpenter/karpenter.k8s.aws/v1/EC2NodeClass';
import { BUILD_TAINT } from '../../tools/kmatrix/fleet/k8s-job.ts';
import { repoRoot } from '../support/workspace.ts';

const fleet = join(repoRoot, 'tools/fleet');
type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown> };
const models: Record<string, new (o: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'karpenter.sh/v1/NodePool': NodePool,
  'karpenter.k8s.aws/v1/EC2NodeClass': EC2NodeClass,
};

function objects(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(fleet, file), 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    return d.toJSON() as Obj;
  });
}

const validate = (o: Obj) => {
  const Model = models[`${o.apiVersion}/${o.kind}`];
  assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o as never).validate();
};

const values = parse(readFileSync(join(fleet, 'arc/values.yaml'), 'utf8')) as {
  runnerScaleSetName: string;
  minRunners: number;
  maxRunners: number;
  containerMode: { type: string };
  template: {
    spec: {
      nodeSelector: Record<string, string>;
      tolerations: { key: string; operator: string; effect: string }[];
      containers: { resources: { requests: { cpu: string; memory: string } } }[];
    };
  };
};
const nodePool = objects('karpenter/nodepool.yaml').find((o) => o.kind === 'NodePool')! as Obj & {
  spec: {
    template: { spec: { taints: { key: string; effect: string }[]; nodeClassRef: { name: string } } };
    limits: { cpu: string };
  };
};

test('every manifest is valid against its API schema', () => {
  for (const file of ['karpenter/nodepool.yaml', 'k8s/dispatch.yaml']) for (const o of objects(file)) validate(o);
  new PodTemplateSpec(values.template as never).validate();
});

test('the schemas do catch mistakes', () => {
  const bad = structuredClone(nodePool);
  bad.spec.template.spec.taints[0]!.effect = 'Sometimes';
  assert.throws(() => validate(bad), /effect must be equal to one of the allowed values/);
  const pod = structuredClone(values.template) as { spec: { containers: { resources: unknown }[] } };
  pod.spec.containers[0]!.resources = { requests: { cpu: 'four' } };
  assert.throws(() => new PodTemplateSpec(pod as never).validate(), /cpu/);
});

test('the runners the workflows ask for exist, land on the build NodePool, and fit in its limits', () => {
  const workflows = readdirSync(join(repoRoot, '.github/workflows')).map((f) =>
    readFileSync(join(repoRoot, '.github/workflows', f), 'utf8'),
  );
  const runsOn = workflows
    .flatMap((w) => [...w.matchAll(/runs-on: (\S+)/g)].map((m) => m[1]!))
    .filter((l) => !l.startsWith('ubuntu-'));
  assert.ok(runsOn.length >= 2);
  for (const label of runsOn) assert.equal(label, values.runnerScaleSetName, 'runs-on names the scale set');
  const lint = parse(readFileSync(join(repoRoot, '.github/actionlint.yaml'), 'utf8')) as {
    'self-hosted-runner': { labels: string[] };
  };
  assert.deepEqual(lint['self-hosted-runner'].labels, [values.runnerScaleSetName]);

  assert.ok(values.minRunners >= 0 && values.minRunners <= values.maxRunners);
  assert.equal(values.containerMode.type, 'dind', 'dockerode needs a Docker engine');
  assert.equal(values.template.spec.nodeSelector['karpenter.sh/nodepool'], nodePool.metadata.name);
  for (const taint of nodePool.spec.template.spec.taints) {
    assert.ok(
      values.template.spec.tolerations.some(
        (t) => t.key === taint.key && t.effect === taint.effect && t.operator === 'Exists',
      ),
      `runners tolerate ${taint.key}`,
    );
  }
  assert.deepEqual(
    nodePool.spec.template.spec.taints.map((t) => t.key),
    [BUILD_TAINT],
    'dispatch --node-pool tolerates the same taint',
  );
  const nodeClasses = objects('karpenter/nodepool.yaml')
    .filter((o) => o.kind === 'EC2NodeClass')
    .map((o) => o.metadata.name);
  assert.ok(nodeClasses.includes(nodePool.spec.template.spec.nodeClassRef.name));
  const cpu = Number(values.template.spec.containers[0]!.resources.requests.cpu);
  assert.ok(
    cpu * values.maxRunners <= Number(nodePool.spec.limits.cpu),
    `${values.maxRunners} runners × ${cpu} CPU fit the NodePool's ${nodePool.spec.limits.cpu}`,
  );
});
