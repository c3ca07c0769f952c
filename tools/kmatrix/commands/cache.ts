import { resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import {
  localEntries,
  localRecord,
  newestOf,
  remoteEntries,
  remoteFromEnv,
  remoteRecord,
  type Entry,
} from '../cache/entries.ts';
import type { BuildRecord } from '../model/build-record.ts';
import { compareInputs, currentInputs } from '../cache/explain.ts';
import { loadTarget } from '../model/target.ts';
import { targetFileFor } from '../compile/execute.ts';
import { loadToolchain, requireLock } from '../model/toolchain.ts';
import { mintNamespaceToken, namespaceKey } from '../cache/tokens.ts';
import { defineCommand } from './command.ts';

const about = `Looks inside the build cache: the local Nx cache of this checkout, or (--remote) the kmatrix
cache server the nx client uses (NX_SELF_HOSTED_REMOTE_CACHE_SERVER with
NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN; a read token is enough).

  ls                    every entry: target, size, age, who wrote it, task hash
  show TARGET|HASH      one entry (the newest for a TARGET, or by task HASH): its inputs — toolchain
                        image, header packages with SHA256, make command, environment, driver
                        source digests — and its modules with sha256 and vermagic
  token NAMESPACE       mint a namespace token for a pull request's CI (e.g. pr-1234) from
                        KMATRIX_CACHE_NAMESPACE_KEY (or _FILE), the key the server holds:
                        it writes only that namespace and reads it, then main
  explain TARGET        why TARGET will miss: its inputs now against the newest cached build of it,
                        input by input (which header package, toolchain digest, flag or source file
                        changed)

TARGET is a project name (driver--distro--kernelrelease--arch). Exit 0; explain exits 1 when
inputs differ.
`;

const age = (iso: string) => {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 120
    ? `${Math.round(s)}s`
    : s < 7200
      ? `${Math.round(s / 60)}m`
      : s < 172800
        ? `${Math.round(s / 3600)}h`
        : `${Math.round(s / 86400)}d`;
};
const size = (n: number) =>
  n < 1024 ? `${n} B` : n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;

async function entries(remote: boolean): Promise<Entry[]> {
  if (remote) return remoteEntries(remoteFromEnv(process.env));
  const { cacheDir } = await import('@nx/devkit'); // resolves NX_CACHE_DIRECTORY / nx.json / ~/.nx like nx does
  return localEntries(cacheDir);
}

async function record(remote: boolean, hash: string): Promise<BuildRecord | undefined> {
  if (remote) return remoteRecord(remoteFromEnv(process.env), hash);
  const { cacheDir } = await import('@nx/devkit');
  return localRecord(cacheDir, hash);
}

/** The entry a TARGET|HASH argument names: a hash as is, or the newest entry of a target. */
async function pick(remote: boolean, ref: string): Promise<Entry> {
  const all = await entries(remote);
  const found = /^\d+$/.test(ref) ? all.find((e) => e.hash === ref) : newestOf(all, ref);
  if (!found) {
    throw new KmatrixError(`no ${remote ? 'remote' : 'local'} cache entry for ${ref}`, {
      stage: 'cache',
      remedy: `list what is cached with \`npx kmatrix cache ls${remote ? ' --remote' : ''}\`; a target is cached after its first \`nx run-many -t build-driver\``,
    });
  }
  return found;
}

export const cacheCommand = defineCommand({
  name: 'cache',
  summary: 'list, show and explain build cache entries (local or remote)',
  args: 'ls|show|explain|token [TARGET|HASH|NAMESPACE]',
  about,
  options: {
    remote: { type: 'boolean', default: false, help: 'the cache server the nx client uses instead of the local cache' },
    json: { type: 'boolean', default: false, help: 'ls and show: print JSON' },
  },
  async run({ values, positionals }) {
    const [sub, ref, ...extra] = positionals;
    const usage = (why: string) => new KmatrixError(why, { stage: 'usage', remedy: 'see `npx kmatrix cache --help`' });
    if (extra.length > 0) throw usage('too many arguments');
    const out = (text: string) => process.stdout.write(`${text}\n`);
    if (sub === 'ls') {
      const list = (await entries(values.remote)).sort(
        (a, b) => (a.target ?? '').localeCompare(b.target ?? '') || b.createdAt.localeCompare(a.createdAt),
      );
      if (values.json) out(JSON.stringify(list, null, 2));
      else {
        for (const e of list)
          out(
            `${(e.target ?? '(not a kmatrix build)').padEnd(60)} ${size(e.size).padStart(10)} ${age(e.createdAt).padStart(5)}  ${e.writer}  ${e.hash}`,
          );
        out(`${list.length} entr${list.length === 1 ? 'y' : 'ies'}`);
      }
      return 0;
    }
    if (sub === 'show') {
      if (!ref) throw usage('show needs a TARGET or HASH');
      const entry = await pick(values.remote, ref);
      const rec = await record(values.remote, entry.hash);
      if (!rec)
        throw new KmatrixError(`cache entry ${entry.hash} has no build.json`, {
          stage: 'cache',
          remedy: 'it was not written by a kmatrix build-driver task',
        });
      if (values.json) {
        out(JSON.stringify({ ...entry, ...rec }, null, 2));
        return 0;
      }
      out(
        `${rec.target}  (task hash ${entry.hash}, ${size(entry.size)}, written ${age(entry.createdAt)} ago by ${entry.writer})`,
      );
      out(`toolchain  ${rec.inputs.toolchain.image}`);
      for (const h of rec.inputs.headers) out(`header     ${h.name} ${h.version}  sha256 ${h.sha256}`);
      out(`make       ${rec.inputs.make.join(' ')}`);
      for (const [k, v] of Object.entries(rec.inputs.env)) out(`env        ${k}=${v}`);
      for (const [f, d] of Object.entries(rec.inputs.driverSources)) out(`source     ${f}  sha256 ${d}`);
      for (const m of rec.outputs)
        out(`module     ${m.file}  sha256 ${m.sha256}  ${size(m.size)}  vermagic ${m.vermagic}`);
      return 0;
    }
    if (sub === 'token') {
      if (!ref) throw usage('token needs a NAMESPACE, e.g. pr-1234');
      const key = await namespaceKey(process.env);
      if (!key)
        throw new KmatrixError('KMATRIX_CACHE_NAMESPACE_KEY is not set', {
          stage: 'cache',
          remedy: 'set it (or KMATRIX_CACHE_NAMESPACE_KEY_FILE) to the key the cache server was started with',
        });
      out(mintNamespaceToken(key, ref));
      return 0;
    }
    if (sub === 'explain') {
      if (!ref) throw usage('explain needs a TARGET');
      const root = resolve('.');
      const target = await loadTarget(targetFileFor(root, ref));
      const entry = await pick(values.remote, target.name);
      const rec = await record(values.remote, entry.hash);
      if (!rec) throw new KmatrixError(`cache entry ${entry.hash} has no build.json`, { stage: 'cache' });
      const now = await currentInputs(root, target, requireLock(await loadToolchain(root, target.toolchain.name)));
      const diffs = compareInputs(rec.inputs, now);
      out(`${target.name}: against the cached build ${entry.hash} (${age(entry.createdAt)} ago)`);
      for (const d of diffs) out(`  ${d.input}: ${d.detail}`);
      if (diffs.length === 0) {
        out('  headers, toolchain, recipe, RECIPE_VERSION and driver sources are all as cached: if nx still misses,');
        out("  the task's other inputs changed (the installed dockerode) — `npx nx affected --explain` shows which");
      }
      return diffs.length === 0 ? 0 : 1;
    }
    throw usage(sub ? `unknown subcommand "${sub}"` : 'which one: ls, show, explain or token?');
  },
});
