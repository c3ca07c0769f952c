/**
 * An OCI image pushed straight to a registry over the Distribution v2 HTTP API, no Docker daemon:
 * blobs (skipped when the registry has them), then the manifest. The image's digest is the SHA256
 * of manifest bytes we write ourselves, so the same layers and config give the same digest on any
 * machine, into any registry. Layers are uncompressed tar: a compressor's output is not the same
 * everywhere (zlib builds differ by CPU and platform), a tar's bytes are.
 */
import { byteProgress } from './progress.ts';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KmatrixError } from './errors.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export async function fileDigest(file: string): Promise<Descriptor> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return { mediaType: OCI_LAYER_TAR, digest: `sha256:${hash.digest('hex')}`, size: (await stat(file)).size };
}

/** An image of uncompressed tar layers and a config (as given: its key order is the caller's). */
export interface ImageParts {
  layers: { file: string; descriptor: Descriptor }[];
  config: Record<string, unknown>;
}

/** The exact bytes pushed: JSON with a fixed key order, no whitespace variation. */
export function imageDocuments(parts: ImageParts): { config: Buffer; manifest: Buffer; digest: string } {
  const config = Buffer.from(JSON.stringify(parts.config));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256Of(config), size: config.length },
      layers: parts.layers.map((l) => l.descriptor),
    }),
  );
  return { config, manifest, digest: sha256Of(manifest) };
}

const sha256Of = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function registryError(repository: string, what: string, detail: string): KmatrixError {
  return new KmatrixError(`pushing to ${repository}: ${what} (${detail})`, {
    stage: 'toolchain',
    remedy: 'check that the registry is up and writable (`bash tools/setup-host.sh` starts one on 127.0.0.1:5000)',
  });
}

/** host:port/name → the v2 API base for that repository (plain HTTP: a registry on the runner's network). */
function apiOf(repository: string): { base: string; name: string } {
  const slash = repository.indexOf('/');
  return { base: `http://${repository.slice(0, slash)}/v2`, name: repository.slice(slash + 1) };
}

async function pushBlob(repository: string, d: Descriptor, body: () => Buffer | Readable): Promise<void> {
  const { base, name } = apiOf(repository);
  const head = await fetch(`${base}/${name}/blobs/${d.digest}`, { method: 'HEAD' });
  if (head.ok) return;
  const start = await fetch(`${base}/${name}/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location');
  if (start.status !== 202 || !location) throw registryError(repository, 'upload refused', `HTTP ${start.status}`);
  const url = new URL(location, `${base}/`);
  url.searchParams.set('digest', d.digest);
  const data = body();
  const put = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(d.size) },
    body: Buffer.isBuffer(data) ? data : (Readable.toWeb(data) as ReadableStream),
    duplex: 'half',
  } as RequestInit);
  if (put.status !== 201)
    throw registryError(
      repository,
      `blob ${d.digest} not stored`,
      `HTTP ${put.status}: ${(await put.text()).slice(0, 200)}`,
    );
}

/** A layer file to upload, its bytes counted into a progress display when there is a log. */
function layerStream(file: string, d: Descriptor, log?: (line: string) => void): Readable {
  const stream = createReadStream(file);
  if (!log) return stream;
  const progress = byteProgress(`push ${d.digest.slice(7, 19)}`, d.size, log);
  stream.on('data', (chunk) => progress.advance(chunk.length));
  stream.on('close', () => progress.done());
  return stream;
}

/** Pushes the image and tags it; returns the manifest digest, which the registry must agree on. */
export async function pushImage(
  repository: string,
  tag: string,
  parts: ImageParts,
  log?: (line: string) => void,
): Promise<string> {
  const docs = imageDocuments(parts);
  for (const layer of parts.layers)
    await pushBlob(repository, layer.descriptor, () => layerStream(layer.file, layer.descriptor, log));
  const configDescriptor = { mediaType: OCI_CONFIG, digest: sha256Of(docs.config), size: docs.config.length };
  await pushBlob(repository, configDescriptor, () => docs.config);
  const { base, name } = apiOf(repository);
  const put = await fetch(`${base}/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: docs.manifest,
  });
  if (put.status !== 201)
    throw registryError(repository, 'manifest not stored', `HTTP ${put.status}: ${(await put.text()).slice(0, 200)}`);
  const said = put.headers.get('docker-content-digest');
  if (said && said !== docs.digest)
    throw registryError(repository, 'the registry computed another digest', `${said}, not ${docs.digest}`);
  return docs.digest;
}

/** Whether the registry serves this manifest (an OCI one needs the OCI Accept header). */
export async function hasManifest(repository: string, digest: string): Promise<boolean> {
  const { base, name } = apiOf(repository);
  try {
    const res = await fetch(`${base}/${name}/manifests/${digest}`, {
      method: 'HEAD',
      headers: {
        accept: `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json`,
      },
      signal: AbortSignal.timeout(10_000),
    });
    return res.ok;
  } catch {
    return false;
  }
}

/** A body read whole but never past `max` bytes: a registry answer is data from outside. */
async function boundedBody(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) throw new KmatrixError(`${what} is ${declared} bytes, more than ${max}`, { stage: 'publish' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.length;
    if (size > max) throw new KmatrixError(`${what} is more than ${max} bytes`, { stage: 'publish' });
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

const MAX_MANIFEST = 1024 * 1024;
const MAX_LAYER = 512 * 1024 * 1024;

/**
 * An image's uncompressed tar layers, fetched from the registry by tag or digest and each checked
 * against the digest that names it (the manifest against a digest reference, each blob against
 * its descriptor) — what a node would run, read back.
 */
export async function pullLayers(repository: string, reference: string): Promise<{ digest: string; layers: Buffer[] }> {
  const { base, name } = apiOf(repository);
  const failed = (what: string, detail: string) =>
    new KmatrixError(`pulling ${repository}:${reference}: ${what} (${detail})`, {
      stage: 'publish',
      remedy: 'check the image reference and that the registry is up',
    });
  const res = await fetch(`${base}/${name}/manifests/${reference}`, {
    headers: { accept: OCI_MANIFEST },
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw failed('no manifest', `HTTP ${res.status}`);
  const bytes = await boundedBody(res, MAX_MANIFEST, 'the manifest');
  const digest = sha256Of(bytes);
  if (reference.startsWith('sha256:') && digest !== reference)
    throw failed('the manifest is not the one named', digest);
  let layers: Descriptor[];
  try {
    layers = (JSON.parse(bytes.toString('utf8')) as { layers: Descriptor[] }).layers;
    if (!Array.isArray(layers)) throw new Error('no layers');
  } catch (error) {
    throw failed('not an image manifest', (error as Error).message);
  }
  const out: Buffer[] = [];
  for (const l of layers) {
    if (l.mediaType !== OCI_LAYER_TAR)
      throw failed(`layer ${l.digest} is ${l.mediaType}`, 'kmatrix images have uncompressed tar layers');
    const blob = await fetch(`${base}/${name}/blobs/${l.digest}`, { signal: AbortSignal.timeout(120_000) });
    if (!blob.ok) throw failed(`no layer ${l.digest}`, `HTTP ${blob.status}`);
    const body = await boundedBody(blob, MAX_LAYER, `layer ${l.digest}`);
    if (sha256Of(body) !== l.digest) throw failed(`layer ${l.digest} has other bytes`, sha256Of(body));
    out.push(body);
  }
  return { digest, layers: out };
}
