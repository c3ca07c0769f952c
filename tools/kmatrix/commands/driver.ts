import { resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { POLICY_FILE } from '../model/policy.ts';
import { importDkmsDriver } from '../compile/dkms-import.ts';
import { defineCommand, log } from './command.ts';

const about = `Adds a DKMS driver: SOURCE is a DKMS source tree (a folder with dkms.conf) or a *-dkms .deb
(its /usr/src/<name>-<version>/ tree is used). dkms.conf is a bash fragment, so it is evaluated
by bash inside the toolchain container, as DKMS would; at import, with no kernel, to check that
it names its package and valid module names (a bad value is an error naming the variable and
the value). The tree is copied to drivers/NAME/ and declared in the policy as
{"path": "drivers/NAME", "dkms": true}; the command suggests a matrix rule that selects kernels
of kernels/; add it and run \`npx kmatrix gen\`.

Each build then evaluates dkms.conf for its own kernel (kernelver, kernel_source_dir with that
kernel's .config, arch, dkms_tree set): the modules it names for that kernel are the ones the
build produces and checks (a "modules" list in the policy, if given, must agree). Honoured:
BUILT_MODULE_NAME[], BUILT_MODULE_LOCATION[], DEST_MODULE_NAME[], STRIP[], MAKE[] and
MAKE_MATCH[], PATCH[] and PATCH_MATCH[], PRE_BUILD, POST_BUILD, BUILD_EXCLUSIVE_KERNEL, _ARCH,
_CONFIG, _KERNEL_MIN and _KERNEL_MAX (an excluded kernel is reported as skipped, with the
reason, not failed); make runs with -j set to the build's share of the CPUs.
`;

export const driverCommand = defineCommand({
  name: 'driver',
  summary: 'import a DKMS driver (source tree or -dkms .deb)',
  args: 'import SOURCE',
  pathPositional: (_, i) => i === 1,
  about,
  options: {
    name: { type: 'string', value: 'NAME', help: 'driver name (default: the PACKAGE_NAME of dkms.conf)' },
    toolchain: {
      type: 'string',
      value: 'NAME',
      help: "toolchain whose container evaluates dkms.conf (default: the policy's first distro's)",
    },
    policy: { type: 'string', default: POLICY_FILE, path: true, value: 'FILE', help: 'the policy to add it to' },
  },
  async run({ values, positionals }) {
    if (positionals[0] !== 'import' || positionals.length !== 2)
      throw new KmatrixError('usage: kmatrix driver import SOURCE', {
        stage: 'usage',
        remedy: 'see `npx kmatrix driver --help`',
      });
    const imported = await importDkmsDriver({
      root: resolve('.'),
      source: positionals[1]!,
      policyFile: values.policy,
      ...(values.name ? { name: values.name } : {}),
      ...(values.toolchain ? { toolchain: values.toolchain } : {}),
    });
    const { name, packageName, toolchain, modules, suggestedRule: rule } = imported;
    log(`imported ${packageName} as drivers/${name} (dkms.conf evaluated in ${toolchain})`);
    log(
      `modules without a kernel's configuration: ${modules.join(', ') || '(none)'}; each build evaluates dkms.conf for its own kernel, which may add or drop some`,
    );
    log(
      rule
        ? `next: add a matrix rule, e.g. ${rule}, then \`npx kmatrix gen\``
        : `next: crawl the distros of the policy (\`npx kmatrix crawl\`), add a matrix rule for ${name}, then \`npx kmatrix gen\``,
    );
    return 0;
  },
});
