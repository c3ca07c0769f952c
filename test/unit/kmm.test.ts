/**
 * KMM: image tags from kernel versions as KMM writes them, the Module manifest against KMM's own
 * CRD (and its webhook's rules), and pulling an image back from a registry that misbehaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/workspace.ts';
import { startServer } from '../support/http.ts';
import { kmmKernel, kmmTag } from '../../tools/kmatrix/publish/kmod-image.ts';
import { manifestYaml, moduleManifest } from '../../tools/kmatrix/publish/kmm-manifest.ts';
import type { PublishedIndex, PublishedTarget } from '../../tools/kmatrix/publish/published-index.ts';
import { loadTarget } from '../../tools/kmatrix/model/target.ts';
import { pullLayers } from '../../tools/kmatrix/core/oci-registry.ts';

type Schema = {
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: unknown;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
};

async function moduleSchema(): Promise<Schema> {
  const text = await readFile(join(repoRoot, 'test/fixtures/kmm/kmm.sigs.x-k8s.io_modules.yaml'), 'utf8');
  const crd = parseAllDocuments(text)[0]!.toJSON();
  return crd.spec.versions.find((v: { name: string }) => v.name === 'v1beta1').schema.openAPIV3Schema;
}

/** Fields the schema does not know: the API server would drop them without a word (structural pruning). */
function unknownFields(schema: Schema, value: unknown, path: string): string[] {
  if (Array.isArray(value))
    return value.flatMap((v, i) => (schema.items ? unknownFields(schema.items, v, `${path}[${i}]`) : []));
  if (
    typeof value !== 'object' ||
    value === null ||
    !schema.properties ||
    schema.additionalProperties ||
    schema['x-kubernetes-preserve-unknown-fields']
  )
    return [];
  return Object.entries(value).flatMap(([k, v]) =>
    schema.properties![k] ? unknownFields(schema.properties![k]!, v, `${path}.${k}`) : [`${path}.${k}`],
  );
}

/** KMM's admission webhook (internal/webhook/module.go): what the CRD schema alone does not say. */
function webhookProblems(m: ReturnType<typeof moduleManifest>): string[] {
  const out: string[] = [];
  if (m.metadata.name.length + m.metadata.namespace.length > 40) out.push('name + namespace longer than 40');
  for (const k of m.spec.moduleLoader.container.kernelMappings as {
    literal?: string;
    regexp?: string;
    containerImage: string;
  }[]) {
    if ((k.literal === undefined) === (k.regexp === undefined)) out.push('exactly one of literal and regexp');
    if (!/[:@]/.test(k.containerImage)) out.push(`${k.containerImage}: no tag or digest`);
  }
  const { moduleName, modulesLoadingOrder } = m.spec.moduleLoader.container.modprobe as {
    moduleName: string;
    modulesLoadingOrder?: string[];
  };
  if (modulesLoadingOrder && (new Set(modulesLoadingOrder).size < 2 || modulesLoadingOrder[0] !== moduleName))
    out.push('modulesLoadingOrder: at least 2 unique, moduleName first');
  return out;
}

async function indexOf(modules: string[][]): Promise<PublishedIndex> {
  const amd64 = await loadTarget(
    join(repoRoot, 'targets/kmx-echo/debian-bookworm/6.12.117+deb12-amd64/x86_64/target.json'),
  );
  const arm64 = await loadTarget(join(repoRoot, 'targets/kmx-echo/debian-bookworm/6.1.0-57-arm64/aarch64/target.json'));
  const entry = (target: typeof amd64, files: string[], n: number): PublishedTarget => ({
    buildId: String(n).repeat(64),
    revision: 'a'.repeat(40),
    publishedAt: new Date(0).toISOString(),
    target,
    inputs: {
      targetJsonSha256: '',
      toolchain: { name: 't', image: 'i' },
      headers: [],
      driverSources: {},
      make: [],
      env: {},
    },
    modules: files.map((file) => ({ file, vermagic: '', key: `k/${file}`, sha256: 'b'.repeat(64), size: 1 })),
    provenance: { key: 'p', sha256: 'c'.repeat(64), size: 1 },
    kmm: {
      image: `127.0.0.1:5000/kmm/kmx-echo@sha256:${String(n).repeat(64)}`,
      tag: kmmTag(target.kernelrelease),
      kernel: kmmKernel(target.kernelrelease),
    },
  });
  return {
    format: 1,
    updatedAt: new Date(0).toISOString(),
    targets: { [amd64.name]: entry(amd64, modules[0]!, 1), [arm64.name]: entry(arm64, modules[1] ?? modules[0]!, 2) },
  };
}

test('image tags are kernel versions as KMM writes them: "+" and other characters become "_", a trailing "+" goes', () => {
  assert.equal(kmmTag('6.12.117+deb12-amd64'), '6.12.117_deb12-amd64');
  assert.equal(kmmTag('6.11.4-301.fc41.x86_64'), '6.11.4-301.fc41.x86_64');
  assert.equal(kmmKernel('5.15.0-1064-aws+'), '5.15.0-1064-aws');
  assert.equal(kmmTag('5.15.0-1064-aws+'), '5.15.0-1064-aws');
  const long = kmmTag(`6.1.0-${'x'.repeat(200)}`);
  assert.ok(long.length <= 128 && /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(long), long);
  assert.notEqual(long, kmmTag(`6.1.0-${'x'.repeat(199)}y`), 'two long versions keep distinct tags');
});

test("a driver's Module is valid against KMM's CRD and webhook rules, maps exactly the published kernels, pinned by digest", async () => {
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  const schema = await moduleSchema();
  const validate = ajv.compile(schema);
  for (const modules of [[['kmx_echo.ko']], [['kmx_core.ko', 'kmx_echo.ko']]]) {
    const index = await indexOf(modules);
    const manifest = moduleManifest(index, 'kmx-echo', { namespace: 'kmm-operator-system' });
    const yaml = parse(manifestYaml(manifest)) as typeof manifest;
    assert.ok(validate(yaml), JSON.stringify(validate.errors, null, 2));
    assert.deepEqual(unknownFields(schema, yaml, ''), []);
    assert.deepEqual(webhookProblems(manifest), []);
    const mappings = yaml.spec.moduleLoader.container.kernelMappings;
    assert.deepEqual(
      mappings.map((k: { literal: string }) => k.literal),
      ['6.1.0-57-arm64', '6.12.117+deb12-amd64'],
    );
    for (const k of mappings) assert.match(k.containerImage, /^127\.0\.0\.1:5000\/kmm\/kmx-echo@sha256:[0-9a-f]{64}$/);
    assert.equal(yaml.spec.moduleLoader.container.modprobe.moduleName, modules[0]![0]!.replace('.ko', ''));
    assert.deepEqual(yaml.spec.selector, { 'kmatrix.io/kmx-echo': 'true' });
  }
  // The checks can fail: a mapping with both literal and regexp, an image without tag, a typo'd field.
  const bad = structuredClone(moduleManifest(await indexOf([['kmx_echo.ko']]), 'kmx-echo', { namespace: 'default' }));
  (bad.spec.moduleLoader.container.kernelMappings[0] as Record<string, string>).regexp = '^6\\.1';
  bad.spec.moduleLoader.container.kernelMappings[1]!.containerImage = 'registry/kmx-echo';
  (bad.spec.moduleLoader.container.modprobe as Record<string, unknown>).modulename = 'typo';
  assert.deepEqual(webhookProblems(bad), ['exactly one of literal and regexp', 'registry/kmx-echo: no tag or digest']);
  assert.deepEqual(unknownFields(schema, bad, ''), ['.spec.moduleLoader.container.modprobe.modulename']);
  assert.equal(validate({ ...bad, spec: { moduleLoader: bad.spec.moduleLoader } }), false, 'spec.selector is required');
});

test('a Module is refused when KMM could not take it: no images, modules that differ by kernel, a name too long', async () => {
  assert.throws(
    () => moduleManifest({ format: 1, updatedAt: '', targets: {} }, 'kmx-echo', { namespace: 'default' }),
    /no KMM images of driver kmx-echo are published/,
  );
  assert.throws(
    () => moduleManifest({ format: 1, updatedAt: '', targets: {} }, 'kmx-echo', { namespace: 'default' }),
    (e: unknown) => /publish --kmm/.test((e as { remedy: string }).remedy),
  );
  const differing = await indexOf([['kmx_echo.ko'], ['kmx_echo.ko', 'kmx_extra.ko']]);
  assert.throws(
    () => moduleManifest(differing, 'kmx-echo', { namespace: 'default' }),
    /builds other modules for some kernels/,
  );
  const fine = await indexOf([['kmx_echo.ko']]);
  assert.throws(
    () => moduleManifest(fine, 'kmx-echo', { namespace: 'a-namespace-that-is-far-too-long-for-kmm' }),
    /longer than 40 characters/,
  );
});

test('pulling an image back: a layer with other bytes, an oversized manifest, a registry that fails are clear errors', async () => {
  const layer = Buffer.from('not the layer the manifest names');
  const named = `sha256:${createHash('sha256').update('the real layer').digest('hex')}`;
  const manifest = JSON.stringify({
    schemaVersion: 2,
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: named, size: layer.length }],
  });
  const server = await startServer((req, res) => {
    if (req.url!.includes('/manifests/big')) {
      res.writeHead(200, { 'content-length': String(2 * 1024 * 1024) });
      return res.end(Buffer.alloc(2 * 1024 * 1024));
    }
    if (req.url!.includes('/manifests/gzip'))
      return res.end(
        JSON.stringify({
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: named, size: 1 }],
        }),
      );
    if (req.url!.includes('/manifests/ok')) return res.end(manifest);
    if (req.url!.includes('/blobs/')) return res.end(layer);
    res.writeHead(500).end();
  });
  try {
    const repo = `${server.url.replace('http://', '')}/kmm/x`;
    await assert.rejects(pullLayers(repo, 'ok'), /layer sha256:[0-9a-f]{64} has other bytes/);
    await assert.rejects(pullLayers(repo, 'big'), /the manifest is 2097152 bytes, more than 1048576/);
    await assert.rejects(pullLayers(repo, 'gzip'), /is application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/);
    await assert.rejects(pullLayers(repo, 'gone'), /no manifest \(HTTP 500\)/);
    await assert.rejects(pullLayers(repo, `sha256:${'0'.repeat(64)}`), /no manifest|not the one named/);
  } finally {
    await server.close();
  }
});
