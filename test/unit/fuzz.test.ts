/**
 * A fuzz-style property test: thousands of seeded random mutations of a valid policy and of real
 * kernel-crawler lists go through the same parsing the CLI does. Every outcome must be a parsed
 * value or a clean validation error (KmatrixError naming the file and the JSON path) — never a
 * crash — and whatever parses must also plan without throwing anything but a KmatrixError. The
 * planner gets real inputs: the crawled Debian lists in kernels/ and the repository's pinned
 * toolchains, so its rules run (the unmutated policy plans real targets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseWith } from '../../tools/kmatrix/core/json-file.ts';
import { validPolicy } from '../../tools/kmatrix/model/policy.ts';
import { FAMILIES } from '../../tools/kmatrix/distros/registry.ts';
import { kernelList } from '../../tools/kmatrix/model/kernel-list.ts';
import { listedKernels } from '../../tools/kmatrix/gen/crawler-list.ts';
import { planTargets } from '../../tools/kmatrix/gen/plan.ts';
import type { LoadedToolchain } from '../../tools/kmatrix/gen/toolchain-select.ts';
import { loadAllToolchains } from '../../tools/kmatrix/model/toolchain.ts';
import { distroOfPolicy, type Policy } from '../../tools/kmatrix/model/policy.ts';
import type { ListedKernel } from '../../tools/kmatrix/model/kernel-list.ts';
import { repoRoot } from '../support/workspace.ts';
import { KmatrixError } from '../../tools/kmatrix/core/errors.ts';

/** mulberry32: a tiny seeded PRNG, so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  '',
  '..',
  '../../etc/passwd',
  '$(reboot)',
  ';rm -rf /',
  'x'.repeat(5000),
  '\u0000',
  [],
  {},
  [[]],
  { __proto__: { polluted: 1 } },
  'file:///etc/shadow',
  'http://',
  '6.1.0-*',
  NaN,
];

function mutate(value: unknown, r: () => number, depth = 0): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  if (depth > 6 || r() < 0.15) return pick(ODD_VALUES);
  if (Array.isArray(value)) {
    const out = value.map((v) => (r() < 0.3 ? mutate(v, r, depth + 1) : v));
    if (r() < 0.2) out.push(mutate(pick(value.length ? value : [null]), r, depth + 1));
    if (r() < 0.2) out.splice(Math.floor(r() * out.length), 1);
    if (r() < 0.1 && out.length) out.push(out[0]); // duplicates
    return out;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const k of Object.keys(out)) {
      if (r() < 0.25) out[k] = mutate(out[k], r, depth + 1);
      else if (r() < 0.05) delete out[k];
    }
    if (r() < 0.1)
      out[pick(['extra', '../x', 'Slackware', 'kmatrix', '__proto__', 'constructor'])] = mutate(
        pick(ODD_VALUES),
        r,
        depth + 1,
      );
    return out;
  }
  return r() < 0.5 ? pick(ODD_VALUES) : value;
}

function expectCleanOutcome<T>(what: string, seed: number, run: () => T): T | undefined {
  try {
    return run();
  } catch (error) {
    assert.ok(error instanceof KmatrixError, `${what} seed ${seed}: ${(error as Error)?.stack ?? String(error)}`);
    for (const p of error.problems) assert.match(p, /^[^:]+: /, `${what} seed ${seed}: a problem names its file: ${p}`);
    return undefined;
  }
}

const policy = JSON.parse(readFileSync(new URL('../fixtures/policy-crawler.json', import.meta.url), 'utf8'));
const crawler = ['x86_64-sample.json', 'aarch64-sample.json', 'current-x86_64.json', 'current-aarch64.json'].map((f) =>
  JSON.parse(readFileSync(new URL(`../fixtures/kernel-crawler/${f}`, import.meta.url), 'utf8')),
);
// The Debian family reads crawler entries with this machine's mirrors: these, for the test.
process.env.KMATRIX_DEBIAN_MIRROR = 'http://mirror.test/debian';
process.env.KMATRIX_DEBIAN_SECURITY_MIRROR = 'http://mirror.test/debian-security';

/** The repository's pinned toolchains, as gen loads them. */
async function realToolchains(): Promise<Map<string, LoadedToolchain>> {
  const out = new Map<string, LoadedToolchain>();
  for (const toolchain of await loadAllToolchains(repoRoot))
    if (toolchain.lock) out.set(toolchain.name, { toolchain, lock: toolchain.lock });
  return out;
}

/** The crawled Debian lists in kernels/, read as gen reads them for `p`. */
async function realKernels(p: Policy): Promise<ListedKernel[]> {
  const lists = ['bookworm', 'bullseye'].flatMap((r) =>
    ['x86_64', 'aarch64'].map((a) =>
      kernelList.parse(
        JSON.parse(readFileSync(new URL(`../../kernels/debian-${r}-${a}.json`, import.meta.url), 'utf8')),
      ),
    ),
  );
  const merged = Object.fromEntries(lists.flatMap((l, i) => Object.entries(l).map(([k, v]) => [`${i}#${k}`, v])));
  return (await listedKernels(merged, distroOfPolicy(p))).kernels;
}

test('2,000 random mutations of a policy give a policy or a clean validation error', async () => {
  const toolchains = await realToolchains();
  const kernels = await realKernels(validPolicy(FAMILIES).parse(policy));
  const unmutated = planTargets(validPolicy(FAMILIES).parse(policy), kernels, toolchains).targets.length;
  assert.ok(unmutated >= 10, `the unmutated policy plans ${unmutated} targets`);
  let parsed = 0;
  let planned = 0;
  for (let seed = 1; seed <= 2000; seed++) {
    const r = rng(seed);
    const out = expectCleanOutcome('policy', seed, () =>
      parseWith(validPolicy(FAMILIES), mutate(structuredClone(policy), r), {
        file: 'support-matrix.json',
        stage: 'policy',
        what: 'policy',
        remedy: 'fix it',
      }),
    );
    if (out) {
      parsed++;
      const plan = expectCleanOutcome('plan', seed, () => planTargets(out, structuredClone(kernels), toolchains));
      if (plan?.targets.length) planned++;
    }
  }
  assert.ok(parsed > 0, 'some mutations stay valid, so the planner is exercised too');
  assert.ok(planned > 0, 'and some of those plan targets, so its rules run on real kernels');
});

test('2,000 random mutations of real kernel-crawler lists give a list or a clean validation error', async () => {
  const toolchains = await realToolchains();
  const valid = validPolicy(FAMILIES).parse(policy);
  let parsed = 0;
  let planned = 0;
  for (let seed = 1; seed <= 2000; seed++) {
    const r = rng(seed);
    const source = crawler[seed % crawler.length];
    const out = expectCleanOutcome('crawler list', seed, () =>
      parseWith(kernelList, mutate(structuredClone(source), r), {
        file: 'list.json',
        stage: 'kernel-list',
        what: 'kernel list',
        remedy: 'fix it',
      }),
    );
    if (out) {
      parsed++;
      // Reading the entries never throws: an odd entry becomes a reason of its own.
      const listed = await listedKernels(out, distroOfPolicy(valid)).catch((error: unknown) =>
        assert.fail(`listed kernels seed ${seed}: ${(error as Error)?.stack ?? String(error)}`),
      );
      // …and what they read as plans cleanly against the real policy and toolchains.
      const plan = expectCleanOutcome('plan', seed, () => planTargets(valid, listed.kernels, toolchains));
      if (plan?.targets.length) planned++;
    }
  }
  assert.ok(parsed > 0);
  assert.ok(planned > 0, 'some mutated lists still plan targets');
});
