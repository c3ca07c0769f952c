import { resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { POLICY_FILE } from '../model/policy.ts';
import { generate, type KernelKey } from '../gen/pipeline.ts';
import { renderSkipped } from '../gen/skipped.ts';
import { staleRecipes } from '../gen/recipe-check.ts';
import { renderDifference } from '../recipe/check.ts';
import { defineCommand, log } from './command.ts';
import type { CommandOutput } from './json-output.ts';

const about = `Turns the support-matrix policy and the kernel lists into one folder per target:
  targets/<driver>/<distro>/<kernelrelease>/<arch>/target.json
Deterministic: the same inputs give a byte-identical tree. Targets no longer in the
matrix are removed. Prints what was added, removed and changed. Every problem is
reported before anything is written; on error nothing changes.

Kernel lists are those \`kmatrix crawl\` writes, or kernel-crawler output as falcosecurity
publishes it (x86_64/list.json, aarch64/list.json; the 2022 and the current format). Of a
crawler list, entries are read from their header URLs by their distro family (Debian: the real
\`uname -r\` comes from the header package, and this machine's mirror is tried before the listed
ones), and the SHA256 of each package a target needs is resolved once by downloading it into the
header store ($KMATRIX_STORE) and recorded in target.json. Entries kmatrix cannot build (other distros,
kernelconfigdata-only entries, packages no mirror serves) are reported, never silently dropped:
a package that cannot be fetched for any reason (HTTP 4xx, 5xx after retries, DNS, TLS, a
reset, a short body) skips only its own kernel, with the reason; each reason is printed once
with a count, and the skipped entries are counted per distro.

A target that leaves the matrix is not deleted: its target.json becomes a small "removed"
marker (no Nx project). Nx treats a deleted project file as a reason to re-run every task,
so deleting it would make \`nx affected\` rebuild the whole matrix for one dropped kernel.
--prune-removed deletes the markers (do it when a full, cached re-check is fine).

Each target.json carries its recipes: everything that reaches the build container and
the boot test's guest, rendered from the target. They are the tasks' cache keys (with
the driver's files and RECIPE_VERSION), so a change to kmatrix's code rebuilds only
the targets whose recipes it changes. --check renders every committed target's recipes
again and fails, naming each target and field, if any differs (run it in CI); it reads
no kernel list and writes nothing.
`;

/** DISTRO/KERNELRELEASE/ARCH, e.g. debian-bookworm/6.1.0-47-amd64/x86_64. */
function parseKernelKey(text: string): KernelKey {
  const m = text.match(/^([a-z0-9][a-z0-9._-]*)\/([A-Za-z0-9][A-Za-z0-9.+~_-]*)\/(x86_64|aarch64)$/);
  if (!m)
    throw new KmatrixError(
      `--only ${text}: expected DISTRO/KERNELRELEASE/ARCH, e.g. debian-bookworm/6.1.0-47-amd64/x86_64`,
      { stage: 'usage', remedy: 'see `npx kmatrix gen --help`' },
    );
  return { distro: m[1]!, kernelrelease: m[2]!, arch: m[3]! };
}

/** `gen --check`: 0 when every committed recipe is current, else each stale field and exit 1. */
async function checkRecipes(root: string, out: CommandOutput): Promise<number> {
  const { checked, stale } = await staleRecipes(root);
  out.result({
    checked,
    stale: stale.map((t) => ({ target: t.name, differences: t.differences.map(renderDifference) })),
  });
  if (stale.length === 0) {
    log(`${checked} targets: every recipe is what this code renders`);
    return 0;
  }
  for (const t of stale) {
    log(`stale ${t.name}`);
    for (const d of t.differences) log(`    ${renderDifference(d)}`);
  }
  throw new KmatrixError(`${stale.length} of ${checked} targets hold recipes this code would render differently`, {
    stage: 'gen',
    remedy: 'run `npx kmatrix gen` and commit targets/ (the diff shows what now runs differently)',
  });
}

export const genCommand = defineCommand({
  name: 'gen',
  summary: 'generate targets/ from the policy and kernel lists',
  about,
  json: true,
  options: {
    policy: { type: 'string', default: POLICY_FILE, path: true, value: 'FILE', help: 'the policy' },
    kernels: {
      type: 'string',
      multiple: true,
      path: true,
      value: 'FILE',
      help: 'a kernel list (repeatable; default: kernels/*.json)',
    },
    'dry-run': { type: 'boolean', default: false, help: 'report what would change, write nothing' },
    verbose: {
      type: 'boolean',
      default: false,
      help: 'list every skipped entry (by default each reason is printed once, with a count)',
    },
    'prune-removed': { type: 'boolean', default: false, help: 'delete the markers of removed targets (see above)' },
    check: {
      type: 'boolean',
      default: false,
      help: 'fail if a committed target.json holds a recipe this code would render differently (writes nothing)',
    },
    only: {
      type: 'string',
      multiple: true,
      value: 'DISTRO/KERNELRELEASE/ARCH',
      help: `generate just the targets of this kernel (repeatable), ignoring the rules'
        \`latest\` (the kernel is in use somewhere: \`kmatrix request\`), and leave every
        other target file as it is; exit 1 if the policy selects no target for it`,
    },
  },
  async run({ values }, _, out) {
    if (values.check) return checkRecipes(resolve('.'), out);
    const only = (values.only ?? []).map(parseKernelKey);
    const result = await generate({
      root: resolve('.'),
      policyFile: values.policy,
      ...(values.kernels ? { kernelFiles: values.kernels } : {}),
      dryRun: values['dry-run'],
      pruneRemoved: values['prune-removed'],
      only,
      log,
    });
    for (const [key, gcc] of result.learnedCompilers)
      log(`compiler of ${key.replace(' ', ' (')}) from its headers: gcc-${gcc}`);
    for (const w of result.warnings) log(`warning: ${w}`);
    const { sync } = result;
    const verb = values['dry-run'] ? 'would be ' : '';
    for (const n of sync.added) log(`+ ${n}`);
    for (const n of sync.changed) log(`~ ${n}`);
    for (const n of sync.removed) log(`- ${n}`);
    if (sync.pruned > 0) log(`${sync.pruned} removed-target marker${sync.pruned === 1 ? '' : 's'} ${verb}pruned`);
    for (const x of result.excluded) log(`excluded ${x.target}: ${x.reason}`);
    // A gap each, or (a list with many) one line with a count: the gaps are the archive's, not errors.
    const gaps = result.targets.filter((t) => t.kernel.imageGap);
    out.result({
      dryRun: values['dry-run'],
      targets: result.targets.length,
      added: sync.added,
      changed: sync.changed,
      removed: sync.removed,
      unchanged: sync.unchanged,
      pruned: sync.pruned,
      excluded: result.excluded,
      imageGaps: gaps.map((t) => ({ target: t.name, gap: t.kernel.imageGap })),
      warnings: result.warnings,
      skipped: result.skipped,
      unsupported: result.unsupported,
    });
    if (values.verbose || gaps.length <= 3) {
      for (const t of gaps)
        log(`no kernel image for ${t.name}: ${t.kernel.imageGap} (it builds; test-driver reports the gap)`);
    } else {
      log(
        `no kernel image for ${gaps.length} targets (${gaps
          .slice(0, 3)
          .map((t) => t.name)
          .join(
            ', ',
          )}, and ${gaps.length - 3} more; --verbose names each gap): they build; test-driver reports the gaps`,
      );
    }
    for (const line of renderSkipped(result.skipped, result.unsupported, values.verbose)) log(line);
    if (only.length > 0 && result.targets.length === 0) {
      throw new KmatrixError(`the policy selects no target for ${values.only!.join(', ')}`, {
        stage: 'gen',
        remedy:
          'check the kernel is in a kernel list (`npx kmatrix crawl`) and that a matrix rule covers its distro, arch, flavour and version (see the skipped/excluded lines above)',
      });
    }
    log(
      `${result.targets.length} targets: ${sync.added.length} ${verb}added, ${sync.changed.length} ${verb}changed, ${sync.removed.length} ${verb}removed, ${sync.unchanged} unchanged`,
    );
    return 0;
  },
});
