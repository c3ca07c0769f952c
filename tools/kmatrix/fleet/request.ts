/**
 * On demand: a node booted a kernel nobody built for yet and needs its driver now. A request for
 * (distro, kernelrelease, arch) is answered from the published index; else the target is
 * generated (crawling the distro first if its kernel lists do not know the kernel), Nx runs its
 * build — from the remote cache when any runner built it, else building it — and the result is
 * published, so the next request is a lookup. Requests for one kernel share one build, in this
 * process (a map of promises) and across processes (a lock).
 *
 * The service is meant for a network, so every request is bounded: only the policy's distros, a
 * fixed number of builds at once with a bounded queue behind them (429 past it), one crawl per
 * distro and arch at a time and none again within a while, kernels found not to exist remembered
 * as such, and failures answered without the internal detail (URLs, paths) they carry, which goes
 * to the service log instead.
 */
import { workspacePluginOptions } from '../model/plugin-options.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { KmatrixError } from '../core/errors.ts';
import { stableJson, writeFileAtomic } from '../core/atomic-file.ts';
import { loadPolicy, POLICY_FILE } from '../model/policy.ts';
import { FAMILIES, familyNamed } from '../distros/registry.ts';
import { generate, type GenResult } from '../gen/pipeline.ts';
import { crawl, crawlJobs } from '../gen/crawl.ts';
import { withLock } from '../core/file-lock.ts';
import { KeyedRuns, QueueFull, Slots } from '../core/pool.ts';
import { existingTargetFiles } from '../gen/sync.ts';
import { isRemoved, loadTargetFile, type Target } from '../model/target.ts';
import { resolveRef, repositoryUrl } from '../gen/git-state.ts';
import type { ArtifactStore } from '../publish/artifact-store.ts';
import { builderFromEnv } from '../model/build-record.ts';
import { publish } from '../publish/publish.ts';
import { provenanceKeyFromEnv } from '../publish/dsse.ts';
import { loadIndex, type PublishedIndex } from '../publish/published-index.ts';
import { nxBin } from './affected.ts';

export interface KernelKey {
  distro: string;
  kernelrelease: string;
  arch: 'x86_64' | 'aarch64';
}

export interface ModuleAnswer {
  target: string;
  driver: string;
  file: string;
  sha256: string;
  size: number;
  key: string;
  url: string;
  signed?: { key: string; url: string; sha256: string };
  provenance: string;
}

export interface Answer extends KernelKey {
  /** published: already in the index; cache: restored by Nx, then published; built: compiled now. */
  source: 'published' | 'cache' | 'built';
  modules: ModuleAnswer[];
}

/** A request that cannot be met, with the HTTP status the service answers it with. */
export class RequestError extends KmatrixError {
  readonly status: number;
  /** Seconds after which asking again can get another answer (HTTP Retry-After). */
  readonly retryAfter?: number;

  constructor(status: number, message: string, remedy: string, problems?: string[], retryAfter?: number) {
    super(message, { stage: 'request', remedy, ...(problems ? { problems } : {}) });
    this.status = status;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }
}

export interface ServiceLimits {
  /** Kernels generated and built at once. */
  builds: number;
  /** Kernels waiting for a build slot; more get 429. */
  queue: number;
  /** How long a kernel found not to exist, and a crawl's outcome, are remembered. */
  rememberMs: number;
}

/** Kernels remembered as not covered, at most. */
const MAX_REMEMBERED = 10_000;

export const DEFAULT_LIMITS: ServiceLimits = { builds: 2, queue: 8, rememberMs: 10 * 60_000 };

const keyName = (k: KernelKey) => `${k.distro}/${k.kernelrelease}/${k.arch}`;
const matches = (k: KernelKey, t: Pick<Target, 'distro' | 'kernelrelease' | 'arch' | 'kernel'>) =>
  t.distro === k.distro &&
  t.arch === k.arch &&
  (t.kernelrelease === k.kernelrelease || t.kernel.listedAs === k.kernelrelease);

export class RequestService {
  private readonly inFlight = new KeyedRuns<Answer>({ remember: false });
  private readonly crawls = new KeyedRuns<void>({ remember: false });
  /** When each distro/arch was last crawled, and whether it failed. */
  private readonly crawled = new Map<string, { at: number; failed: boolean }>();
  /** Kernels the policy does not cover, with when that was found. */
  private readonly uncovered = new Map<string, { at: number; error: RequestError }>();
  private readonly slots: Slots;
  private readonly limits: ServiceLimits;
  /** The index as last read: published modules never change, so a hit in it stays true. */
  private index: PublishedIndex | undefined;
  private readonly root: string;
  private readonly store: ArtifactStore;
  private readonly log: (line: string) => void;

  constructor(root: string, store: ArtifactStore, log: (line: string) => void, limits = DEFAULT_LIMITS) {
    this.root = root;
    this.store = store;
    this.log = log;
    this.limits = limits;
    this.slots = new Slots(limits.builds, limits.queue);
  }

  /** Concurrent requests for one kernel get the same promise: one build. */
  async request(key: KernelKey): Promise<Answer> {
    const name = keyName(key);
    await this.requirePolicyDistro(key);
    if (this.inFlight.has(name)) this.log(`${name}: joining the request in progress`);
    return this.inFlight.run(name, () => this.serve(key));
  }

  /** A kernel found not covered, remembered for a while; the oldest go past a bound (callers choose the names). */
  private remember(name: string, error: RequestError): void {
    this.uncovered.delete(name);
    this.uncovered.set(name, { at: Date.now(), error });
    if (this.uncovered.size > MAX_REMEMBERED) this.uncovered.delete(this.uncovered.keys().next().value!);
  }

  /** A distro the policy does not name is answered before anything runs. */
  private async requirePolicyDistro(key: KernelKey): Promise<void> {
    const policy = await loadPolicy(join(this.root, POLICY_FILE), FAMILIES);
    if (policy.distros[key.distro]) return;
    throw new RequestError(
      404,
      `${key.distro} is not a distro of the support matrix`,
      `one of: ${Object.keys(policy.distros).join(', ')}`,
    );
  }

  private answer(key: KernelKey, index: PublishedIndex, source: Answer['source']): Answer | undefined {
    const entries = Object.entries(index.targets).filter(([, e]) => matches(key, e.target));
    if (entries.length === 0) return undefined;
    const modules = entries.flatMap(([name, e]) =>
      e.modules.map((m) => ({
        target: name,
        driver: e.target.driver.name,
        file: m.file,
        sha256: m.sha256,
        size: m.size,
        key: m.key,
        url: this.store.locate(m.key),
        ...(m.signed
          ? { signed: { key: m.signed.key, url: this.store.locate(m.signed.key), sha256: m.signed.sha256 } }
          : {}),
        provenance: this.store.locate(e.provenance.key),
      })),
    );
    return { ...key, source, modules };
  }

  private async liveTargets(key: KernelKey): Promise<Target[]> {
    const out: Target[] = [];
    for (const f of await existingTargetFiles(this.root)) {
      if (!f.includes(`/${key.distro}/`) || !f.endsWith(`/${key.arch}/target.json`)) continue;
      const t = await loadTargetFile(join(this.root, f));
      if (!isRemoved(t) && matches(key, t)) out.push(t);
    }
    return out;
  }

  /** From the index in memory, else from a fresh read of it (someone may have published since). */
  private async lookup(key: KernelKey): Promise<Answer | undefined> {
    const cached = this.index && this.answer(key, this.index, 'published');
    if (cached) return cached;
    this.index = await loadIndex(this.store);
    return this.answer(key, this.index, 'published');
  }

  private async serve(key: KernelKey): Promise<Answer> {
    const published = await this.lookup(key);
    if (published) return published;
    const name = keyName(key);
    const known = this.uncovered.get(name);
    if (known && Date.now() - known.at < this.limits.rememberMs) {
      this.log(`${name}: not covered (remembered)`);
      throw known.error;
    }
    try {
      return await this.slots.run(() => this.generateAndBuild(key));
    } catch (error) {
      if (!(error instanceof QueueFull)) throw error;
      throw new RequestError(
        429,
        `${this.limits.builds} builds are running and ${this.limits.queue} waiting`,
        'ask again after Retry-After seconds',
        undefined,
        30,
      );
    }
  }

  private async generateAndBuild(key: KernelKey): Promise<Answer> {
    const name = keyName(key);
    const lock = join(this.root, 'dist', 'kmatrix', 'requests', `${name.replaceAll('/', '--')}.lock`);
    return withLock(
      lock,
      () => this.log(`${name}: another process is on it; waiting`),
      async () => {
        // Whoever held the lock may have published it meanwhile.
        const meanwhile = await this.lookup(key);
        if (meanwhile) return meanwhile;
        const targets = await this.generate(key);
        const names = targets.map((t) => t.name);
        this.log(`${name}: building ${names.join(', ')} (from the cache when a runner built it)`);
        const restored = await this.build(name, names);
        await this.publishTargets(names);
        this.index = await loadIndex(this.store);
        const done = this.answer(key, this.index, restored ? 'cache' : 'built');
        if (!done)
          throw new RequestError(
            502,
            `${name} was built but nothing was published (a DKMS driver that excludes this kernel?)`,
            'see `npx kmatrix report`',
          );
        return done;
      },
    );
  }

  /** Nx builds the targets (restored from the cache when it can); whether all were restored. */
  private async build(name: string, names: string[]): Promise<boolean> {
    const nx = await execa(
      process.execPath,
      [
        await nxBin(this.root),
        'run-many',
        '-t',
        workspacePluginOptions(this.root).buildTargetName,
        `--projects=${names.join(',')}`,
      ],
      { cwd: this.root, reject: false, all: true, env: { NX_TUI: 'false', FORCE_COLOR: '0' } },
    );
    const output = nx.all ?? '';
    if (nx.exitCode !== 0) {
      // The build's output names paths and mirrors: for the service log, not for the caller.
      for (const line of output
        .split('\n')
        .filter((l) => /error|failed/i.test(l))
        .slice(0, 20))
        this.log(`${name}: ${line}`);
      throw new RequestError(
        502,
        `the build for ${name} failed`,
        `the service log has the build's errors; \`npx kmatrix reproduce\` rebuilds ${names.join(', ')} locally`,
      );
    }
    return names.every((n) =>
      new RegExp(
        `nx run ${n.replace(/[.+]/g, '\\$&')}:build-driver\\s+\\[(local cache|remote cache|existing outputs match the cache)`,
      ).test(output),
    );
  }

  /** Publishes just these targets (marked requested), one publisher at a time in this checkout. */
  private async publishTargets(names: string[]): Promise<void> {
    const provenanceKey = await provenanceKeyFromEnv();
    await withLock(
      join(this.root, 'dist', 'kmatrix', 'publish.lock'),
      () => {},
      async () => {
        await publish({
          root: this.root,
          store: this.store,
          revision: await resolveRef(this.root, 'HEAD'),
          repository: await repositoryUrl(this.root),
          builder: builderFromEnv(),
          ...(provenanceKey ? { provenanceKey } : {}),
          only: new Set(names),
          log: this.log,
        });
      },
    );
  }

  /** `kmatrix gen --only` for this kernel, as a library call; a policy or list problem is the answer's "why". */
  private async genOnly(key: KernelKey): Promise<{ ok: true; result: GenResult } | { ok: false; why: string[] }> {
    return withLock(
      join(this.root, 'dist', 'kmatrix', 'gen.lock'),
      () => {},
      async () => {
        try {
          return {
            ok: true as const,
            result: await generate({
              root: this.root,
              policyFile: join(this.root, POLICY_FILE),
              only: [key],
              log: this.log,
            }),
          };
        } catch (error) {
          if (!(error instanceof KmatrixError)) throw error;
          return { ok: false as const, why: [error.message, ...(error.problems ?? [])].slice(0, 6) };
        }
      },
    );
  }

  /**
   * Crawls the kernel's distro for its arch (through the distro's family), into the kernel list gen
   * reads: one crawl per distro and arch at a time, shared by every request that needs it, and not
   * again for a while after (a kernel unknown to a fresh crawl does not exist yet).
   */
  private async crawlFor(key: KernelKey, what: string): Promise<void> {
    const name = keyName(key);
    const which = `${key.distro}/${key.arch}`;
    const last = this.crawled.get(which);
    const wait = last ? Math.ceil((last.at + this.limits.rememberMs - Date.now()) / 1000) : 0;
    if (last && wait > 0) {
      this.log(`${name}: ${which} was crawled ${last.failed ? 'unsuccessfully ' : ''}moments ago; not again yet`);
      if (!last.failed) return;
      throw new RequestError(503, `crawling ${what} ${key.arch} failed`, 'ask again later', undefined, wait);
    }
    if (this.crawls.has(which)) this.log(`${name}: joining the crawl of ${which} in progress`);
    return this.crawls.run(which, async () => {
      this.log(`${name}: not in the kernel lists; crawling ${what} ${key.arch}`);
      try {
        const jobs = await crawlJobs(join(this.root, POLICY_FILE), { distros: [key.distro], archs: [key.arch] });
        await crawl(jobs, true, this.log, (job, list) => writeFileAtomic(join(this.root, job.file), stableJson(list)));
        this.crawled.set(which, { at: Date.now(), failed: false });
      } catch (error) {
        if (!(error instanceof KmatrixError)) throw error;
        this.crawled.set(which, { at: Date.now(), failed: true });
        // The error names the mirror: for the service log, not for the caller.
        this.log(`${name}: crawling ${which} failed: ${error.message}`);
        throw new RequestError(
          502,
          `crawling ${what} ${key.arch} failed`,
          'the service log has why; ask again later',
          undefined,
          Math.ceil(this.limits.rememberMs / 1000),
        );
      }
    });
  }

  /** The kernel's targets: existing, generated from the kernel lists, or after crawling its distro. */
  private async generate(key: KernelKey): Promise<Target[]> {
    const name = keyName(key);
    let targets = await this.liveTargets(key);
    if (targets.length > 0) return targets;
    let gen = await this.genOnly(key);
    if (gen.ok && gen.result.targets.length === 0) {
      // gen just read the policy: it is valid. Crawl only for a kernel the lists do not know:
      // one they know is the policy's call.
      const distro = (await loadPolicy(join(this.root, POLICY_FILE), FAMILIES)).distros[key.distro];
      const listed = await readFile(join(this.root, 'kernels', `${key.distro}-${key.arch}.json`), 'utf8').then(
        (t) => t.includes(`"${key.kernelrelease}"`),
        () => false,
      );
      if (distro && !listed) {
        await this.crawlFor(
          key,
          `${distro.distro ?? familyNamed(distro.family).defaultDistro ?? distro.family} ${distro.release}`,
        );
        gen = await this.genOnly(key);
      }
    }
    targets = await this.liveTargets(key);
    if (!gen.ok || targets.length === 0) {
      const why = gen.ok
        ? [
            ...gen.result.excluded
              .filter((x) => x.target.includes(key.kernelrelease))
              .map((x) => `excluded ${x.target}: ${x.reason}`),
            ...gen.result.skipped
              .filter((x) => x.what.includes(key.kernelrelease))
              .map((x) => `skipped ${x.what}: ${x.why}`),
          ].slice(0, 6)
        : gen.why;
      // The reasons name files of this checkout: the caller gets them relative to it.
      for (const line of why) this.log(`${name}: ${line}`);
      const relative = why.map((l) => l.replaceAll(`${this.root}/`, '').replaceAll(this.root, '.'));
      const error = new RequestError(
        404,
        `no driver is built for ${name}: the support matrix does not cover it`,
        'add it to support-matrix.json (a rule for the distro, arch, flavour and kernel version), or check the name (`uname -r`)',
        relative,
      );
      // Only a matrix that does not cover it is remembered; a policy or list that failed to load is not.
      if (gen.ok) this.remember(name, error);
      throw error;
    }
    this.log(`${name}: generated ${targets.map((t) => t.name).join(', ')}`);
    return targets;
  }
}
