import { join, resolve } from 'node:path';
import { FAMILIES, familyNamed } from '../distros/registry.ts';
import { loadPolicy, POLICY_FILE } from '../model/policy.ts';
import { KmatrixError } from '../core/errors.ts';
import { defaultStoreDir } from '../packages/store.ts';
import { identifier } from '../model/names.ts';
import { buildToolchain } from '../toolchain/build.ts';
import { loadToolchain } from '../model/toolchain.ts';
import { defineCommand, log } from './command.ts';

const about = `Builds toolchain NAME's image from its distro's packages alone (Debian: mmdebstrap from this
machine's mirror, signatures checked against the archive keyring, timestamps fixed), pushes it
straight to the OCI registry (KMATRIX_REGISTRY, default 127.0.0.1:5000) as a one-layer image and
records its manifest digest and every package version in toolchains/NAME/toolchain.lock.json.
Builds run the image by that digest.

The same toolchain.json and package versions give the same digest on any machine, into any
registry: on a fresh runner, building reproduces the committed lock and changes nothing. If the
registry already has the pinned image, nothing is built. If the archive has moved on (a pinned
version is no longer served), the command names each package, pinned version → available one,
and writes nothing; --update re-pins, and \`npx kmatrix gen\` then changes the toolchain's
targets (and only those; \`npx kmatrix diff\` lists them).
`;

export const toolchainCommand = defineCommand({
  name: 'toolchain',
  summary: 'build, push and pin a toolchain image',
  args: 'build NAME',
  about,
  options: {
    force: {
      type: 'boolean',
      default: false,
      help: 'build the image even if the registry has the pinned one (the digest must come out the same)',
    },
    update: {
      type: 'boolean',
      default: false,
      help: 'build from the versions the archive serves now and re-pin them',
    },
    policy: {
      type: 'string',
      default: POLICY_FILE,
      path: true,
      value: 'FILE',
      help: "the policy that declares the toolchain's distro and its family",
    },
  },
  async run({ values, positionals }) {
    const [sub, name, ...rest] = positionals;
    if (sub !== 'build' || !name || rest.length > 0 || !identifier.safeParse(name).success) {
      throw new KmatrixError('usage: kmatrix toolchain build NAME', {
        stage: 'usage',
        remedy: 'e.g. `npx kmatrix toolchain build debian-bookworm`',
      });
    }
    const root = resolve('.');
    const toolchain = await loadToolchain(root, name);
    const policy = await loadPolicy(values.policy, FAMILIES);
    const distro = policy.distros[toolchain.spec.distro];
    if (!distro) {
      throw new KmatrixError(
        `toolchain ${name} is for distro ${toolchain.spec.distro}, which ${values.policy} does not declare`,
        {
          stage: 'toolchain',
          remedy: `add "${toolchain.spec.distro}" under "distros" in ${values.policy} with its "family" and "release" (the family makes the toolchain's image)`,
        },
      );
    }
    const { lock, repository } = await buildToolchain({
      toolchain,
      family: familyNamed(distro.family),
      lockDir: join(defaultStoreDir(), 'locks'),
      force: values.force,
      update: values.update,
      log,
    });
    process.stdout.write(`${repository}@${lock.digest}\n`);
    return 0;
  },
});
