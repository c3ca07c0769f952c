import { resolve } from 'node:path';
import { parseFormats, publishPackages, requirePackageTools } from '../publish/packages.ts';
import { defaultStoreDir, HeaderStore } from '../packages/store.ts';
import { resolveRef, repositoryUrl } from '../gen/git-state.ts';
import { defaultPublishStore, openArtifactStore } from '../publish/open-artifact-store.ts';
import { provenanceKeyFromEnv } from '../publish/dsse.ts';
import { signingKeyFromEnv } from '../publish/module-signature.ts';
import { builderFromEnv } from '../model/build-record.ts';
import { assertCommitted, publish } from '../publish/publish.ts';
import { publishKmm } from '../publish/kmm.ts';
import { connectDocker } from '../core/docker.ts';
import { loadGuestLock } from '../model/guest-lock.ts';
import { defineCommand, log } from './command.ts';

const about = `Uploads the built modules of every target in targets/ (from dist/, as \`nx run-many -t
build-driver\` left or restored them) to the artifact store, each with an in-toto / SLSA v1
provenance statement in a DSSE envelope, and then rewrites the store's index.json — the published state that
\`kmatrix diff --published\` and \`kmatrix request\` read.

  modules/<driver>/<distro>/<kernelrelease>/<arch>/<build id>/<module>.ko
                                                   …/<module>.signed.ko       (when signing)
                                                   …/provenance.<key id>.dsse.json
  index.json

The build id is the SHA256 of the build's inputs (toolchain digest, header SHA256s, flags, driver
sources), so publishing is idempotent, and a key never gets other bytes: if the same inputs gave
different bytes, the publish stops before the index changes. Targets removed from the matrix
leave the index (their files stay).

Signing (optional): with KMATRIX_SIGN_KEY_FILE and KMATRIX_SIGN_CERT_FILE (PEM key and X.509
certificate) each module is also published signed by the kernel's own module-signing tool from
the target's header packages (KMATRIX_SIGN_HASH, default sha256). The unsigned .ko stays the
reproducible artifact the provenance names.

Provenance signing: with KMATRIX_PROVENANCE_KEY_FILE (a PEM Ed25519 or ECDSA P-256 private key)
each envelope is signed (DSSE v1, key id: SHA256 of the public key), and the index records the key
id; \`kmatrix verify --provenance-key PUB\` checks it. Without it the envelope carries no signature
(provenance.unsigned.dsse.json) and its only protection is the index's SHA256 of it. URLs are
recorded without credentials; runDetails.builder names who ran the build (KMATRIX_BUILDER_ID or
the CI run, recorded in build.json), not who published it.
`;

/** --store: the artifact store (publish writes it, kmm reads its index). */
export const publishStoreOption = {
  type: 'string',
  default: defaultPublishStore(),
  path: true,
  value: 'LOC',
  help: `directory or s3://bucket/prefix (default: $KMATRIX_PUBLISH_STORE, else
        dist/published). S3: AWS_* credentials, KMATRIX_S3_ENDPOINT for MinIO & co.`,
} as const;

export const publishCommand = defineCommand({
  name: 'publish',
  summary: 'upload built modules with provenance to the artifact store and update its index',
  about,
  json: true,
  options: {
    store: publishStoreOption,
    partial: {
      type: 'boolean',
      default: false,
      help: `publish what is built even if some targets are not (exit 0); they keep their
        last published entry. Without it such targets fail the command (exit 1) after
        everything else is published.`,
    },
    'allow-dirty': {
      type: 'boolean',
      default: false,
      help: `publish from a working tree with uncommitted changes to targets/, drivers/,
        toolchains/ or the build code (the provenance then names HEAD, which is not
        what was built)`,
    },
    packages: {
      type: 'string',
      value: 'deb,rpm',
      help: `also make an installable package per published target, of its family's format
        (<driver>-modules-<uname -r>.deb, kmod-<driver>-<uname -r>.rpm; needs dpkg-deb /
        rpmbuild here), stored beside the modules and named in the index and latest.json`,
    },
    kmm: {
      type: 'string',
      value: 'REGISTRY/REPO',
      help: `also push a KMM kmod image per published target to this repository (tag: the
        kernel version; needs Docker for depmod in the target's toolchain image) and record it
        in the index; see \`kmatrix kmm --help\``,
    },
  },
  async run({ values }, _, out) {
    const root = resolve('.');
    const formats = values.packages ? parseFormats(values.packages) : undefined;
    if (formats) await requirePackageTools(formats);
    if (!values['allow-dirty']) await assertCommitted(root);
    const store = await openArtifactStore(values.store);
    const key = signingKeyFromEnv();
    const provenanceKey = await provenanceKeyFromEnv();
    log(
      `publishing to ${store.description}${key ? ' (signing modules)' : ''}${provenanceKey ? ` (signing provenance, key ${provenanceKey.keyId.slice(0, 16)})` : ''}`,
    );
    const report = await publish({
      root,
      store,
      revision: await resolveRef(root, 'HEAD'),
      repository: await repositoryUrl(root),
      builder: builderFromEnv(),
      ...(key ? { signing: { key, headers: new HeaderStore(defaultStoreDir(), log) } } : {}),
      ...(provenanceKey ? { provenanceKey } : {}),
      log: out.print,
    });
    for (const n of report.notBuilt) log(`! ${n.name}: ${n.why} — kept at its last published state`);
    const parts = [`${report.published.length} published`, `${report.unchanged.length} unchanged`];
    if (report.skipped.length) parts.push(`${report.skipped.length} skipped by the driver (DKMS)`);
    if (report.dropped.length) parts.push(`${report.dropped.length} removed from the index`);
    if (report.notBuilt.length) parts.push(`${report.notBuilt.length} not built`);
    out.print(`${parts.join(', ')}; index: ${store.locate('index.json')}`);
    const result: Record<string, unknown> = { store: store.description, index: store.locate('index.json'), ...report };
    out.result(result);
    if (values.kmm) {
      const kmm = await publishKmm({
        root,
        store,
        repository: values.kmm,
        docker: await connectDocker(),
        headers: new HeaderStore(defaultStoreDir(), log),
        lock: await loadGuestLock(root),
        log: out.print,
      });
      out.print(`kmm: ${kmm.pushed.length} images pushed, ${kmm.unchanged.length} unchanged (${values.kmm})`);
      result.kmm = { repository: values.kmm, ...kmm };
    }
    if (formats) {
      const packages = await publishPackages({ store, formats, log: out.print });
      out.print(`packages: ${packages.built.length} made, ${packages.unchanged.length} unchanged`);
      result.packages = packages;
    }
    if (report.notBuilt.length > 0 && !values.partial) {
      log('run `npx nx run-many -t build-driver` first (or pass --partial to publish only what is built)');
      return 1;
    }
    return 0;
  },
});
