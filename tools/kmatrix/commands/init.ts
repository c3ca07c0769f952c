import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { execa } from 'execa';
import { initWorkspace } from '../workspace/init.ts';
import { defineCommand, log } from './command.ts';

const about = `Turns the driver repository you are in into a kmatrix workspace, and prints each file it
wrote (created, updated or unchanged). Run it again any time: it changes nothing that is
already in place.

It finds the driver — the one folder holding dkms.conf, or a Kbuild/Makefile with obj-m
(--driver to name it) — and writes:
  support-matrix.json       the policy: the driver (its modules from obj-m, or "dkms": true)
                            and one rule, the newest kernel of --distro on x86_64
  nx.json                   the kmatrix plugin entry and its named inputs
  toolchains/               the distro's toolchain (definition and lock) and the boot guest's
  tools/kmatrix, plugins/   kmatrix itself, at this version
  package.json              kmatrix's dependencies (then run \`npm install\`)
  .github/workflows/        build, nightly and publish workflows (only those not there yet)
  .gitignore                dist/, .nx/, node_modules/, reproduce/

Then: \`npm install\`, \`npx kmatrix crawl\`, \`npx kmatrix toolchain build <toolchain>\`,
\`npx kmatrix gen\`, \`npx nx run-many -t build-driver\`.
`;

/** kmatrix's own tree: where this file is, three folders up. */
const KMATRIX_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

export const initCommand = defineCommand({
  name: 'init',
  summary: 'adopt an existing driver repository as a kmatrix workspace',
  about,
  json: true,
  atWorkspaceRoot: false,
  options: {
    driver: { type: 'string', path: true, value: 'PATH', help: "the driver's folder (default: the one found)" },
    name: {
      type: 'string',
      value: 'NAME',
      help: "the driver's name (default: dkms.conf's PACKAGE_NAME, else the folder's)",
    },
    modules: { type: 'string', value: 'a,b', help: 'the modules it builds (default: read from obj-m)' },
    distro: { type: 'string', default: 'debian-bookworm', value: 'DISTRO', help: 'the distro of the first rule' },
  },
  async run({ values }, _, out) {
    // The repository's top, wherever in it the command was typed; never an enclosing workspace.
    const top = await execa('git', ['rev-parse', '--show-toplevel'], { reject: false });
    const root = top.exitCode === 0 ? top.stdout.trim() : process.cwd();
    const written = await initWorkspace({
      root,
      kmatrixRoot: KMATRIX_ROOT,
      ...(values.driver ? { driver: values.driver } : {}),
      ...(values.name ? { name: values.name } : {}),
      ...(values.modules ? { modules: values.modules.split(',').map((m) => m.trim()) } : {}),
      distro: values.distro,
    });
    // Folders of kmatrix's own code in one line each; every other file by name.
    const own = (p: string) => p.startsWith('tools/kmatrix/') || p.startsWith('plugins/kmatrix/');
    for (const tree of ['tools/kmatrix', 'plugins/kmatrix']) {
      const mine = written.filter((w) => w.path.startsWith(`${tree}/`));
      const changed = mine.filter((w) => w.action !== 'unchanged').length;
      out.print(
        `${changed === 0 ? 'unchanged' : mine.every((w) => w.action === 'created') ? 'created' : 'updated'}  ${tree}/ (${mine.length} files${changed && changed < mine.length ? `, ${changed} changed` : ''})`,
      );
    }
    for (const w of written.filter((x) => !own(x.path))) out.print(`${w.action.padEnd(9)}  ${w.path}`);
    const changed = written.filter((w) => w.action !== 'unchanged').length;
    log(
      changed === 0
        ? 'nothing to do: the workspace is set up'
        : 'next: npm install, then see `npx kmatrix init --help`',
    );
    out.result({ root, written });
    return 0;
  },
});
