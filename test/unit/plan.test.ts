/** The planner: policy × kernel list → targets, purely, with every problem found before writing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseStanzas } from '../../tools/kmatrix/distros/deb/archive/deb822.ts';
import { kernelsFromIndex } from '../../tools/kmatrix/distros/deb/archive/crawl.ts';
import { planTargets } from '../../tools/kmatrix/gen/plan.ts';
import { listedKernels } from '../../tools/kmatrix/gen/crawler-list.ts';
import {
  distroOfPolicy,
  matchesRelease,
  policySchema,
  validPolicy,
  type Policy,
} from '../../tools/kmatrix/model/policy.ts';
import { FAMILIES } from '../../tools/kmatrix/distros/registry.ts';
import { KmatrixError } from '../../tools/kmatrix/core/errors.ts';
import type { Toolchain, ToolchainLock } from '../../tools/kmatrix/model/toolchain.ts';
import { modinfoField } from '../../tools/kmatrix/model/modinfo.ts';

const excerpt = readFileSync(new URL('../fixtures/bookworm-security-amd64-Packages.excerpt', import.meta.url), 'utf8');
const kernels = kernelsFromIndex(
  parseStanzas(excerpt).map((stanza) => ({ stanza, baseUrl: 'http://m.invalid/debian-security' })),
  'debian-bookworm',
  'x86_64',
);
const list = (await listedKernels({ debian: kernels }, (family, release) => `${family}-${release}`)).kernels;

const lock: ToolchainLock = {
  repository: '127.0.0.1:5000/kmatrix/debian-bookworm',
  digest: `sha256:${'a'.repeat(64)}`,
  contextSha256: 'b'.repeat(64),
};
const toolchain: Toolchain = {
  name: 'debian-bookworm',
  dir: '/nonexistent',
  spec: {
    distro: 'debian-bookworm',
    base: { release: 'bookworm' },
    gcc: '12',
    hostArch: 'x86_64',
    targetArchs: ['x86_64'],
  },
  lock,
};
const toolchains = new Map([['debian-bookworm', { toolchain, lock }]]);

function policy(rule: Record<string, unknown> = {}): Policy {
  return policySchema.parse({
    drivers: { 'kmx-echo': { path: 'drivers/kmx-echo', modules: ['kmx_echo'] } },
    distros: { 'debian-bookworm': { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' } },
    matrix: [
      {
        driver: 'kmx-echo',
        distro: 'debian-bookworm',
        archs: ['x86_64'],
        flavours: ['amd64', 'cloud-amd64'],
        kernels: ['6.1.0-*', '6.12.*'],
        ...rule,
      },
    ],
  });
}

test('gen plans one target per matching kernel, named driver--distro--release--arch', () => {
  const plan = planTargets(policy(), list, toolchains);
  assert.deepEqual(
    plan.targets.map((t) => t.name),
    [
      'kmx-echo--debian-bookworm--6.1.0-57-amd64--x86_64',
      'kmx-echo--debian-bookworm--6.1.0-57-cloud-amd64--x86_64',
      'kmx-echo--debian-bookworm--6.12.117+deb12-amd64--x86_64',
    ],
  );
  const t = plan.targets[0]!;
  assert.equal(t.kernelDir, '/usr/src/linux-headers-6.1.0-57-amd64');
  assert.equal(t.toolchain.digest, lock.digest);
  assert.deepEqual(t.build.makeArgs, ['ARCH=x86']);
  assert.ok(t.build.env.KBUILD_BUILD_TIMESTAMP, 'a fixed build timestamp');
  assert.deepEqual(
    t.headers.map((h) => h.role),
    ['common', 'flavour', 'kbuild'],
  );
});

test('the same inputs give the same plan, byte for byte', () => {
  assert.equal(
    JSON.stringify(planTargets(policy(), list, toolchains)),
    JSON.stringify(planTargets(policy(), list, toolchains)),
  );
});

test('exclusions are reported with their reason, not built', () => {
  const plan = planTargets(
    policy({ exclude: [{ kernelrelease: '6.1.0-57-amd64', reason: 'oops at init' }] }),
    list,
    toolchains,
  );
  assert.ok(!plan.targets.some((t) => t.kernelrelease === '6.1.0-57-amd64'));
  assert.deepEqual(plan.excluded, [
    { target: 'kmx-echo--debian-bookworm--6.1.0-57-amd64--x86_64', reason: 'oops at init' },
  ]);
});

test('a rule that matches no kernel is an error naming the rule', () => {
  assert.throws(
    () => planTargets(policy({ kernels: ['5.10.*'] }), list, toolchains),
    (e: unknown) => e instanceof KmatrixError && e.problems.some((p) => p.startsWith('matrix[0]: no kernel')),
  );
});

test('an arch the toolchain cannot build for is an error naming the field', () => {
  assert.throws(
    () => planTargets(policy({ archs: ['x86_64', 'aarch64'] }), list, toolchains),
    (e: unknown) => e instanceof KmatrixError && e.problems.some((p) => p.startsWith('matrix[0].archs')),
  );
});

test('kernel globs match whole releases only', () => {
  assert.ok(matchesRelease('6.1.0-*', '6.1.0-57'));
  assert.ok(!matchesRelease('6.1.0-*', '6.12.117+deb12'));
  assert.ok(matchesRelease('6.12.*', '6.12.117+deb12'));
  assert.ok(!matchesRelease('6.1', '6.1.0-57'));
});

test('modinfo fields are read from the .modinfo strings of a module', () => {
  const ko = Buffer.concat([
    Buffer.from('\x7fELF junk vermagic=decoy'),
    Buffer.from([0]),
    Buffer.from('license=GPL\0vermagic=6.1.0-57-amd64 SMP preempt mod_unload modversions \0name=kmx_echo\0'),
  ]);
  assert.equal(modinfoField(ko, 'vermagic'), '6.1.0-57-amd64 SMP preempt mod_unload modversions ');
  assert.equal(modinfoField(ko, 'name'), 'kmx_echo');
  assert.equal(modinfoField(ko, 'srcversion'), undefined);
});

test("the kernel's compiler is read from its .config, old and new style, with its vendor", async () => {
  const { gccOfConfig } = await import('../../tools/kmatrix/model/compiler.ts');
  const of = (text: string) => gccOfConfig(`CONFIG_CC_VERSION_TEXT="${text}"\n`);
  assert.deepEqual(of('x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0'), {
    text: 'x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0',
    major: '12',
    version: '12.2.0',
    vendor: 'Debian 12.2.0-14+deb12u1',
  });
  assert.equal(of('gcc-10 (Debian 10.2.1-6) 10.2.1 20210110')?.major, '10');
  // Red Hat's and Amazon's kernels: "(GCC)" first, the vendor's build last.
  assert.deepEqual(of('gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2)'), {
    text: 'gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2)',
    major: '11',
    version: '11.4.1',
    vendor: 'Red Hat 11.4.1-2',
  });
  assert.equal(
    of('x86_64-linux-gnu-gcc-12 (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0')?.vendor,
    'Ubuntu 12.3.0-1ubuntu1~22.04',
  );
  assert.deepEqual(gccOfConfig('CONFIG_GCC_VERSION=100201\n'), {
    text: 'CONFIG_GCC_VERSION=100201',
    major: '10',
    version: '10.2.1',
  });
  assert.equal(gccOfConfig('CONFIG_CLANG_VERSION=0\n'), undefined);
});

test("the toolchain's gcc is compared with the kernel's: major, minor, vendor, revision or none", async () => {
  const { gccOfConfig, gccOfToolchain, compilerDifference } = await import('../../tools/kmatrix/model/compiler.ts');
  const kernel = (text: string) => gccOfConfig(`CONFIG_CC_VERSION_TEXT="${text}"\n`)!;
  const bookworm = gccOfToolchain('12', { 'gcc-12': '12.2.0-14+deb12u1' });
  assert.equal(bookworm.version, '12.2.0');
  assert.equal(
    compilerDifference(kernel('x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0'), bookworm),
    'none',
  );
  assert.equal(compilerDifference(kernel('x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0'), bookworm), 'revision');
  assert.equal(
    compilerDifference(kernel('x86_64-linux-gnu-gcc-12 (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0'), bookworm),
    'minor',
  );
  assert.equal(compilerDifference(kernel('gcc (GCC) 12.2.0 (Red Hat 12.2.0-1)'), bookworm), 'vendor');
  assert.equal(compilerDifference(kernel('gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2)'), bookworm), 'major');
  assert.equal(compilerDifference(gccOfConfig('CONFIG_GCC_VERSION=120200\n')!, bookworm), 'unknown');
  assert.equal(compilerDifference(kernel('gcc-12 12.2.0'), gccOfToolchain('12', undefined)), 'unknown');
});

test('a kernel the archive has no image for still builds; the target records the gap for test-driver', () => {
  const plan = planTargets(policy(), list, toolchains);
  const withImage = plan.targets.find((t) => t.kernelrelease === '6.1.0-57-amd64')!;
  assert.equal(withImage.kernel.image?.name, 'linux-image-6.1.0-57-amd64-unsigned');
  assert.equal(withImage.kernel.imageGap, undefined);
  const cloud = plan.targets.find((t) => t.kernelrelease === '6.1.0-57-cloud-amd64')!;
  assert.equal(cloud.kernel.image, undefined);
  assert.match(
    cloud.kernel.imageGap!,
    /^the archive index lists no unsigned kernel image of 6\.1\.0-57-cloud-amd64 6\.1\.192-3 \(linux-image-6\.1\.0-57-cloud-amd64-unsigned on Debian/,
  );
  // Listed, but the mirror answered 404 at crawl time.
  const gone = list.map((k) =>
    k.kernelrelease === '6.1.0-57-amd64'
      ? { ...k, kmatrix: { ...k.kmatrix, unavailable: ['linux-image-6.1.0-57-amd64-unsigned'] } }
      : k,
  );
  const t = planTargets(policy(), gone, toolchains).targets.find((x) => x.kernelrelease === '6.1.0-57-amd64')!;
  assert.match(t.kernel.imageGap!, /the mirror does not serve linux-image-6\.1\.0-57-amd64-unsigned 6\.1\.192-3/);
});

test('skipped kernels: each reason once with a count, every entry with --verbose, counted once per kernel and distro', async () => {
  const { renderSkipped } = await import('../../tools/kmatrix/gen/skipped.ts');
  const dead = (n: number, driver = 'a') => ({
    what: `${driver}--debian-bookworm--6.1.0-${n}-amd64--x86_64`,
    distro: 'debian-bookworm',
    kernel: `6.1.0-${n}-amd64 x86_64`,
    kind: 'no mirror serves its header packages (HTTP 400)',
    why: `no mirror serves linux-headers-6.1.0-${n}-amd64: HTTP 400 from http://m/${n}`,
  });
  const skipped = [
    ...[1, 2, 3, 4, 5].map((n) => dead(n)),
    dead(1, 'b'),
    ...['1.26.0', '1.26.1'].map(() => ({
      what: 'minikube 5.10.57',
      distro: 'minikube',
      why: 'unbuildable yet: kernelconfigdata only',
    })),
  ];
  const lines = renderSkipped(skipped, new Map([['ubuntu', 7]]), false);
  assert.deepEqual(lines, [
    'skipped 6 entries (a--debian-bookworm--6.1.0-1-amd64--x86_64, a--debian-bookworm--6.1.0-2-amd64--x86_64, a--debian-bookworm--6.1.0-3-amd64--x86_64, and 3 more): no mirror serves its header packages (HTTP 400)',
    'skipped minikube 5.10.57 ×2: unbuildable yet: kernelconfigdata only',
    'skipped 7 ubuntu kernels: no distro family of kmatrix reads ubuntu kernels (it has: deb, rpm; a family is a folder under tools/kmatrix/distros/)',
    'skipped per distro: ubuntu 7, debian-bookworm 5, minikube 1 (--verbose lists every entry)',
  ]);
  const verbose = renderSkipped(skipped, new Map(), true);
  assert.equal(verbose.filter((l) => l.includes('HTTP 400 from http://m/')).length, 6);
  assert.ok(
    verbose.includes(
      'skipped a--debian-bookworm--6.1.0-4-amd64--x86_64: no mirror serves linux-headers-6.1.0-4-amd64: HTTP 400 from http://m/4',
    ),
  );
});

test('a policy distro names its family and release once; an unknown family and a second distro of one release are errors', () => {
  const raw = {
    drivers: { d: { path: 'drivers/d', modules: ['d'] } },
    distros: {
      bookworm: { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' },
      'bookworm-again': { family: 'deb', release: 'bookworm', toolchain: 'debian-bookworm' },
      solaris: { family: 'sunos', release: '11', toolchain: 'debian-bookworm' },
    },
    matrix: [{ driver: 'd', distro: 'bookworm', archs: ['x86_64'], flavours: ['amd64'], kernels: ['*'] }],
  };
  const r = validPolicy(FAMILIES).safeParse(raw);
  assert.ok(!r.success);
  assert.deepEqual(
    r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    [
      'distros.bookworm-again.release: distro "bookworm" is already deb debian bookworm; one policy distro per family, distro and release',
      'distros.solaris.family: unknown distro family "sunos" (known: deb, rpm)',
    ],
  );
  assert.equal(distroOfPolicy(policy())('debian', 'bookworm'), 'debian-bookworm');
  assert.equal(distroOfPolicy(policy())('debian', 'trixie'), 'debian-trixie');
});

test('a policy distro of a family serving several names which one, or is the family default', () => {
  const raw = (distros: Record<string, unknown>) => ({
    drivers: { d: { path: 'drivers/d', modules: ['d'] } },
    distros,
    matrix: [{ driver: 'd', distro: Object.keys(distros)[0], archs: ['x86_64'], flavours: ['amd64'], kernels: ['*'] }],
  });
  const bad = validPolicy(FAMILIES).safeParse(
    raw({
      el: { family: 'rpm', release: '9', toolchain: 'debian-bookworm' },
      arch: { family: 'deb', distro: 'arch', release: 'rolling', toolchain: 'debian-bookworm' },
    }),
  );
  assert.ok(!bad.success);
  const problems = bad.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.match(
    problems[0]!,
    /^distros\.el\.distro: is required: family rpm serves several distros; add "distro": one of "fedora", "almalinux"/,
  );
  assert.match(problems[1]!, /^distros\.arch\.distro: family deb does not serve "arch" \(it serves: debian, ubuntu\)$/);
  // Without `distro`, a deb distro is Debian's: an Ubuntu jammy kernel is not filed under it.
  const good = validPolicy(FAMILIES).parse(
    raw({
      jammy: { family: 'deb', release: 'jammy', toolchain: 'debian-bookworm' },
      alma: { family: 'rpm', distro: 'almalinux', release: '9', toolchain: 'debian-bookworm' },
    }),
  );
  assert.equal(good.distros.jammy!.distro, 'debian');
  assert.equal(distroOfPolicy(good)('deb', 'jammy', 'ubuntu'), 'ubuntu-jammy');
  assert.equal(distroOfPolicy(good)('deb', 'jammy', 'debian'), 'jammy');
  assert.equal(distroOfPolicy(good)('rpm', '9', 'almalinux'), 'alma');
});

test("a kernel list whose header roles are not the distro's family's is an error naming the rule", () => {
  const foreign = list.map((k) => ({
    ...k,
    kmatrix: {
      ...k.kmatrix,
      packages: k.kmatrix.packages.map((p) => ({ ...p, role: p.role === 'common' ? 'shared' : p.role })),
    },
  }));
  assert.throws(
    () => planTargets(policy(), foreign, toolchains),
    (e: unknown) =>
      e instanceof KmatrixError &&
      e.problems.some((p) =>
        /^matrix\[0\]: .*distro debian-bookworm is of family deb, but its kernel list names header roles of another \(shared\)/.test(
          p,
        ),
      ),
  );
});

test('a listed kernel whose roles belong to no family costs only its own entry', async () => {
  const [first, ...rest] = kernels;
  const odd = {
    ...first!,
    kmatrix: { ...first!.kmatrix!, packages: first!.kmatrix!.packages.map((p) => ({ ...p, role: 'mystery' })) },
  };
  const r = await listedKernels({ 'list.json#debian': [odd, ...rest] }, (f, rel) => `${f}-${rel}`);
  assert.equal(r.kernels.length, rest.length);
  assert.deepEqual(r.unusable, [
    {
      what: `debian ${odd.kernelrelease}`,
      distro: 'debian',
      why: 'its header roles (mystery) belong to no distro family of kmatrix',
    },
  ]);
});

test('a rule\'s versions range selects kernels by version: "from" included, "below" not', () => {
  const names = (versions: Record<string, string>) =>
    planTargets(policy({ kernels: ['*'], versions }), list, toolchains).targets.map((t) => t.kernelrelease);
  assert.deepEqual(names({ from: '6.2' }), ['6.12.117+deb12-amd64']);
  assert.deepEqual(names({ below: '6.12' }), ['6.1.0-57-amd64', '6.1.0-57-cloud-amd64']);
  assert.deepEqual(names({ from: '6.1', below: '6.13' }), [
    '6.1.0-57-amd64',
    '6.1.0-57-cloud-amd64',
    '6.12.117+deb12-amd64',
  ]);
  assert.throws(
    () => planTargets(policy({ kernels: ['*'], versions: { from: '6.13' } }), list, toolchains),
    (e: unknown) => e instanceof KmatrixError && e.problems.some((p) => p.startsWith('matrix[0]: no kernel')),
  );
});

test('kernels built with a gcc no toolchain has: one line per distro and gcc with the count, or an error under strictCompiler', () => {
  // Two EL8-like kernels built with gcc 8 (Debian's archive offers no gcc-8), one with the default's gcc 12.
  const gcc8 = list
    .filter((k) => k.kmatrix.flavour !== 'rt-amd64')
    .slice(0, 3)
    .map((k, i) => ({ ...k, kmatrix: { ...k.kmatrix, gcc: i < 2 ? '8' : '12' } }));
  const planned = planTargets(policy({ kernels: ['*'] }), gcc8, toolchains);
  assert.equal(planned.targets.length, 3, 'they still build, with the default toolchain');
  const lines = planned.warnings.filter((w) => w.startsWith('no toolchain for gcc'));
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^no toolchain for gcc 8: 2 debian-bookworm kernels \(.*\) built with gcc-8 build with debian-bookworm \(gcc-12\)/,
  );

  const strict = policySchema.parse({ ...policy({ kernels: ['*'] }) });
  strict.distros['debian-bookworm']!.strictCompiler = true;
  assert.throws(
    () => planTargets(strict, gcc8, toolchains),
    (e: unknown) =>
      e instanceof KmatrixError && (e.problems ?? []).some((p) => /no toolchain for gcc 8: built with gcc-8/.test(p)),
  );
});
