import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { KmatrixError } from '../core/errors.ts';
import { pullLayers } from '../core/oci-registry.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { extractTar } from '../packages/deb.ts';
import { defaultStoreDir, HeaderStore } from '../packages/store.ts';
import { loadGuestLock } from '../model/guest-lock.ts';
import { loadTarget } from '../model/target.ts';
import { targetFileFor } from '../compile/execute.ts';
import { bootKmodImage } from '../boot/kmm-guest.ts';
import { passed, renderBootResult } from '../boot/result.ts';
import { openArtifactStore } from '../publish/open-artifact-store.ts';
import { publishStoreOption } from './publish.ts';
import { loadIndex } from '../publish/published-index.ts';
import { kmmKernel } from '../publish/kmod-image.ts';
import { manifestYaml, moduleManifest } from '../publish/kmm-manifest.ts';
import { defineCommand, log } from './command.ts';

const about = `The Kernel Module Management operator's side (kmm.sigs.x-k8s.io/v1beta1): the images come
from \`kmatrix publish --kmm REGISTRY/REPO\`, which pushes one kmod image per published target
(its modules under /opt/lib/modules/<kernel>/ with depmod output, and the static busybox KMM's
image-extractor runs as sh, mkdir and cp) and records it in the store's index.

  manifest DRIVER   the driver's Module: one literal kernelMapping per published kernel, each
                    image by digest; moduleName (and modulesLoadingOrder) from the driver's
                    modules; nodes labelled kmatrix.io/DRIVER=true get it
  boot TARGET       boots TARGET's own kernel under QEMU with its kmod image (from the index, or
                    --image REF) as the guest's root and does what KMM does on a node: the
                    image-extractor's copy with the image's own programs, modprobe of each module
                    from the copy, the driver's smoke test, unload. Exit 0 when it loads.
`;

async function publishedIndex(store: string) {
  return loadIndex(await openArtifactStore(store));
}

async function manifest(driver: string, values: { store: string; namespace: string; out?: string | undefined }) {
  const text = manifestYaml(
    moduleManifest(await publishedIndex(values.store), driver, { namespace: values.namespace }),
  );
  if (values.out) {
    await writeFileAtomic(values.out, text);
    log(`wrote ${values.out}`);
  } else process.stdout.write(text);
  return 0;
}

/** The image's filesystem, pulled (each blob checked against its digest) and unpacked safely. */
async function unpackImage(ref: string, dir: string): Promise<void> {
  const at = ref.lastIndexOf('@');
  const colon = ref.lastIndexOf(':');
  const [repository, reference] =
    at > 0
      ? [ref.slice(0, at), ref.slice(at + 1)]
      : colon > ref.indexOf('/')
        ? [ref.slice(0, colon), ref.slice(colon + 1)]
        : [ref, 'latest'];
  const { layers } = await pullLayers(repository, reference);
  for (const layer of layers) await extractTar(Readable.from(layer), dir);
}

async function boot(name: string, values: { store: string; image?: string | undefined }) {
  const root = resolve('.');
  const target = await loadTarget(targetFileFor(root, name));
  const entry = (await publishedIndex(values.store)).targets[target.name];
  const image = values.image ?? entry?.kmm?.image;
  if (!image) {
    throw new KmatrixError(`no kmod image of ${target.name} is published`, {
      stage: 'usage',
      remedy: 'push it with `npx kmatrix publish --kmm REGISTRY/REPO`, or name one with --image REF',
    });
  }
  const modules = (entry?.modules ?? []).map((m) => m.file.replace(/\.ko$/, ''));
  const dir = await mkdtemp(join(tmpdir(), 'kmatrix-kmod-image-'));
  try {
    await unpackImage(image, dir);
    log(`booting ${target.kernelrelease} (${target.arch}) with ${image}`);
    const result = await bootKmodImage(root, target, dir, {
      store: new HeaderStore(defaultStoreDir(), log),
      lock: await loadGuestLock(root),
      modules: modules.length ? modules : (target.driver.modules ?? []),
      kernel: kmmKernel(target.kernelrelease),
      log,
    });
    const { consoleText, ...verdict } = result;
    const out = join(root, 'dist/kmm', target.name);
    await writeFileAtomic(join(out, 'console.log'), consoleText);
    const saved = { ...verdict, kmodImage: image, console: relative(root, join(out, 'console.log')) };
    await writeFileAtomic(join(out, 'result.json'), `${JSON.stringify(saved, null, 2)}\n`);
    process.stdout.write(`${renderBootResult(result).join('\n')}\n`);
    return passed(result) ? 0 : 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const kmmCommand = defineCommand({
  name: 'kmm',
  summary: "the KMM operator's Module manifest of a driver, and proof that a kmod image loads",
  args: 'manifest DRIVER | boot TARGET',
  about,
  options: {
    store: publishStoreOption,
    namespace: { type: 'string', default: 'default', value: 'NS', help: "manifest: the Module's namespace" },
    out: { type: 'string', path: true, value: 'FILE', help: 'manifest: write it here instead of stdout' },
    image: { type: 'string', value: 'REF', help: "boot: this image (REPO:TAG or REPO@DIGEST) instead of the index's" },
  },
  async run({ values, positionals }) {
    const [sub, arg, ...extra] = positionals;
    const usage = (why: string) => new KmatrixError(why, { stage: 'usage', remedy: 'see `npx kmatrix kmm --help`' });
    if (!arg || extra.length > 0) throw usage(`kmm ${sub ?? ''} takes exactly one argument`);
    if (sub === 'manifest') return manifest(arg, values);
    if (sub === 'boot') return boot(arg, values);
    throw usage(sub ? `unknown subcommand "${sub}"` : 'which one: manifest or boot?');
  },
});
