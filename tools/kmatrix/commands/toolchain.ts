import { join, resolve } from 'node:path';
import { connectDocker } from '../core/docker.ts';
import { familyNamed, familyNames } from '../distros/registry.ts';
import { loadPolicy, POLICY_FILE } from '../model/policy.ts';
import { KmatrixError } from '../core/errors.ts';
import { defaultStoreDir } from '../packages/store.ts';
import { identifier } from '../model/names.ts';
import { buildToolchain } from '../toolchain/build.ts';
import { loadToolchain } from '../model/toolchain.ts';
import { defineCommand, log } from './command.ts';

const about = `Builds toolchains/NAME/Dockerfile on a base image its distro's family makes from this
machine's package mirror (Debian: debootstrap; no public registry needed), pushes it to the OCI
registry (KMATRIX_REGISTRY, default 127.0.0.1:5000) and records the pushed manifest digest in
toolchains/NAME/toolchain.lock.json. Builds run the image by that digest. If an image built
from the same Dockerfile and toolchain.json is already in the registry, it is reused and
nothing is rebuilt.

After a rebuild, run \`npx kmatrix gen\`: each target.json carries the digest, so every
target of the toolchain (and only those) is rebuilt.
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
      help: 'rebuild the base image and the toolchain even if one is up to date',
    },
    policy: {
      type: 'string',
      default: POLICY_FILE,
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
    const docker = await connectDocker();
    const policy = await loadPolicy(values.policy, familyNames());
    const distro = policy.distros[toolchain.spec.distro];
    if (!distro) {
      throw new KmatrixError(
        `toolchain ${name} is for distro ${toolchain.spec.distro}, which ${values.policy} does not declare`,
        {
          stage: 'toolchain',
          remedy: `add "${toolchain.spec.distro}" under "distros" in ${values.policy} with its "family" and "release" (the family makes the toolchain's base image)`,
        },
      );
    }
    const { lock } = await buildToolchain({
      docker,
      toolchain,
      family: familyNamed(distro.family),
      lockDir: join(defaultStoreDir(), 'locks'),
      force: values.force,
      log,
    });
    process.stdout.write(`${lock.repository}@${lock.digest}\n`);
    return 0;
  },
});
