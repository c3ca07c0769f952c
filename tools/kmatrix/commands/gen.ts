import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KmatrixError } from '../errors.ts';
import { loadKernelList, type KernelList } from '../kernels/schema.ts';
import { planTargets } from '../matrix/generate.ts';
import { loadPolicy, POLICY_FILE } from '../matrix/policy.ts';
import { syncTargets } from '../matrix/sync.ts';
import { loadAllToolchains, loadToolchain, requireLock } from '../toolchain/spec.ts';
import type { LoadedToolchain } from '../matrix/toolchain-select.ts';
import { log, parse, type Command } from './command.ts';

const help = `Usage: npx kmatrix gen [--policy FILE] [--kernels FILE ...] [--dry-run]

Turns the support-matrix policy and the kernel lists into one folder per target:
  targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json
Deterministic: the same inputs give a byte-identical tree. Targets no longer in the
matrix are removed. Prints what was added, removed and changed. Every problem is
reported before anything is written; on error nothing changes.

Options:
  --policy FILE    the policy (default: ${POLICY_FILE})
  --kernels FILE   a kernel list from \`kmatrix crawl\` (repeatable; default: kernels/*.json)
  --dry-run        report what would change, write nothing
  -h, --help       show this help
`;

async function defaultKernelFiles(root: string): Promise<string[]> {
  try {
    return (await readdir(join(root, 'kernels'))).filter((f) => f.endsWith('.json')).sort().map((f) => join('kernels', f));
  } catch {
    return [];
  }
}

export const genCommand: Command = {
  name: 'gen',
  summary: 'generate targets/ from the policy and kernel lists',
  help,
  async run(argv) {
    const { values } = parse('gen', argv, {
      policy: { type: 'string', default: POLICY_FILE },
      kernels: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean', default: false },
    });
    const root = resolve('.');
    const policy = await loadPolicy(values.policy);
    const files = values.kernels ?? (await defaultKernelFiles(root));
    if (files.length === 0) {
      throw new KmatrixError('no kernel list to generate from', {
        stage: 'gen',
        remedy: 'run `npx kmatrix crawl debian` first (it writes kernels/debian-bookworm-x86_64.json), or pass --kernels FILE',
      });
    }
    // Lists from several files may share a key ("debian"); keep each file's entries apart.
    const list: KernelList = {};
    for (const f of files) {
      for (const [distro, entries] of Object.entries(await loadKernelList(f))) list[`${f}#${distro}`] = entries;
    }
    // Every pinned toolchain is a candidate (gcc matching); each distro's default must be pinned.
    const toolchains = new Map<string, LoadedToolchain>();
    for (const toolchain of await loadAllToolchains(root)) {
      if (toolchain.lock) toolchains.set(toolchain.name, { toolchain, lock: toolchain.lock });
    }
    for (const d of Object.values(policy.distros)) {
      if (!toolchains.has(d.toolchain)) requireLock(await loadToolchain(root, d.toolchain));
    }
    const plan = planTargets(policy, list, toolchains);
    for (const w of plan.warnings) log(`warning: ${w}`);
    const report = await syncTargets(root, plan.targets, values['dry-run'], plan.keptDistros);
    const verb = values['dry-run'] ? 'would be ' : '';
    for (const n of report.added) log(`+ ${n}`);
    for (const n of report.changed) log(`~ ${n}`);
    for (const n of report.removed) log(`- ${n}`);
    for (const x of plan.excluded) log(`excluded ${x.target}: ${x.reason}`);
    for (const x of plan.skipped) log(`skipped ${x.what}: ${x.why}`);
    log(`${plan.targets.length} targets: ${report.added.length} ${verb}added, ${report.changed.length} ${verb}changed, ${report.removed.length} ${verb}removed, ${report.unchanged} unchanged`);
    return 0;
  },
};
