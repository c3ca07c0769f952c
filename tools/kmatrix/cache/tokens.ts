/**
 * Who may read and write the cache. Tokens come from the environment or from files, never from
 * argv (argv is visible to every user on the machine) and are never logged: the server keeps only
 * their SHA256 and compares in constant time. A token belongs to a namespace: it writes there and
 * reads there first, then from its `readFrom` namespaces — so a pull request can write to its own
 * namespace and read main's, while main never reads anything a pull request wrote. Namespace
 * tokens (minted per pull request from one key) give each pull request its own namespace.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { KmatrixError } from '../core/errors.ts';
import { readJsonFile } from '../core/json-file.ts';
import { sha256Hex } from '../model/names.ts';

const NAMESPACE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const namespace = z.string().regex(NAMESPACE, 'must be lower-case letters, digits, ".", "_" or "-"');

/**
 * A namespace token: `kmx-ns1.<namespace>.<HMAC-SHA256(key, namespace)>`. The server holds one key
 * (KMATRIX_CACHE_NAMESPACE_KEY) and needs no list: whoever holds the key (the trusted part of CI)
 * mints one token per pull request, and the token itself names the only namespace it may write.
 */
const NAMESPACE_TOKEN = /^kmx-ns1\.([a-z0-9][a-z0-9._-]{0,62})\.([0-9a-f]{64})$/;
/** A key shorter than this is guessable. */
const MIN_KEY_LENGTH = 32;

function namespaceMac(key: string, ns: string): Buffer {
  return createHmac('sha256', key).update(`kmatrix cache namespace ${ns}`).digest();
}

/** Refuses what no namespace token may name: main, and the namespaces the tokens file gives out. */
function checkMintable(ns: string, reserved: Set<string>): string | undefined {
  if (!NAMESPACE.test(ns)) return 'must be lower-case letters, digits, ".", "_" or "-", at most 63';
  if (ns === 'main' || reserved.has(ns)) return 'is used by configured tokens, not by namespace tokens';
  return undefined;
}

export function mintNamespaceToken(key: string, ns: string): string {
  const why = checkMintable(ns, new Set());
  if (why)
    throw new KmatrixError(`namespace "${ns}" ${why}`, {
      stage: 'usage',
      remedy: 'name the pull request, e.g. pr-1234',
    });
  return `kmx-ns1.${ns}.${namespaceMac(key, ns).toString('hex')}`;
}

export const tokensFileSchema = z
  .object({
    tokens: z
      .array(
        z
          .object({
            /** Shown in the access log and recorded as an object's writer. */
            name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
            /** SHA256 (hex) of the token: the file holds no secret. `printf %s "$TOKEN" | sha256sum` */
            sha256: sha256Hex,
            access: z.enum(['read', 'write']),
            namespace: namespace.default('main'),
            readFrom: z.array(namespace).default([]),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export interface Client {
  name: string;
  access: 'read' | 'write';
  namespace: string;
  readFrom: string[];
}

interface Entry extends Client {
  digest: Buffer;
}

export class TokenRing {
  private readonly entries: Entry[];
  private readonly namespaceKey: string | undefined;
  private readonly reserved: Set<string>;

  constructor(entries: Entry[], namespaceKey?: string) {
    this.entries = entries;
    this.namespaceKey = namespaceKey;
    // Namespaces configured tokens write or read: a minted token writing one would poison its readers.
    this.reserved = new Set(entries.flatMap((e) => [e.namespace, ...e.readFrom]));
  }

  get size(): number {
    return this.entries.length;
  }

  get mintsNamespaces(): boolean {
    return this.namespaceKey !== undefined;
  }

  /** The client a bearer token belongs to, or undefined. Every entry is compared (constant time). */
  identify(token: string | undefined): Client | undefined {
    if (!token) return undefined;
    const minted = token.match(NAMESPACE_TOKEN);
    if (minted) return this.identifyMinted(minted[1]!, Buffer.from(minted[2]!, 'hex'));
    const digest = createHash('sha256').update(token).digest();
    let found: Entry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, digest) && !found) found = e;
    return found && { name: found.name, access: found.access, namespace: found.namespace, readFrom: found.readFrom };
  }

  /** A namespace token: it writes its own namespace and reads main's, never another's. */
  private identifyMinted(ns: string, mac: Buffer): Client | undefined {
    if (!this.namespaceKey || checkMintable(ns, this.reserved)) return undefined;
    if (!timingSafeEqual(namespaceMac(this.namespaceKey, ns), mac)) return undefined;
    return { name: `ns:${ns}`, access: 'write', namespace: ns, readFrom: ['main'] };
  }
}

/** The key namespace tokens are minted with (KMATRIX_CACHE_NAMESPACE_KEY or its _FILE), if set. */
export async function namespaceKey(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const key = await secret(env, 'KMATRIX_CACHE_NAMESPACE_KEY');
  if (key !== undefined && key.length < MIN_KEY_LENGTH)
    throw new KmatrixError(`KMATRIX_CACHE_NAMESPACE_KEY is ${key.length} characters; at least ${MIN_KEY_LENGTH}`, {
      stage: 'cache',
      remedy: 'generate one with `openssl rand -hex 32`',
    });
  return key;
}

async function secret(env: NodeJS.ProcessEnv, name: string): Promise<string | undefined> {
  const file = env[`${name}_FILE`];
  if (file) {
    try {
      return (await readFile(file, 'utf8')).trim() || undefined;
    } catch (error) {
      throw new KmatrixError(`cannot read ${name}_FILE (${file}): ${(error as NodeJS.ErrnoException).code}`, {
        stage: 'cache',
        remedy: `point ${name}_FILE at a readable file holding the token`,
      });
    }
  }
  return env[name]?.trim() || undefined;
}

export async function loadTokens(env: NodeJS.ProcessEnv, tokensFile?: string): Promise<TokenRing> {
  const entries: Entry[] = [];
  const add = (name: string, token: string, access: 'read' | 'write') =>
    entries.push({
      name,
      access,
      namespace: 'main',
      readFrom: [],
      digest: createHash('sha256').update(token).digest(),
    });
  const read = await secret(env, 'KMATRIX_CACHE_READ_TOKEN');
  const write = await secret(env, 'KMATRIX_CACHE_WRITE_TOKEN');
  if (read) add('read', read, 'read');
  if (write) add('write', write, 'write');
  if (read && write && read === write) {
    throw new KmatrixError('KMATRIX_CACHE_READ_TOKEN and KMATRIX_CACHE_WRITE_TOKEN are the same token', {
      stage: 'cache',
      remedy: 'generate two different tokens (e.g. `openssl rand -hex 32`)',
    });
  }
  if (tokensFile) {
    const file = await readJsonFile(tokensFileSchema, tokensFile, {
      stage: 'cache',
      what: 'tokens file',
      remedy: 'fix the fields listed above',
    });
    for (const t of file.tokens) entries.push({ ...t, digest: Buffer.from(t.sha256, 'hex') });
  }
  const key = await namespaceKey(env);
  if (entries.length === 0 && !key) {
    throw new KmatrixError('no cache tokens configured: the server would let nobody in', {
      stage: 'cache',
      remedy:
        'set KMATRIX_CACHE_READ_TOKEN and KMATRIX_CACHE_WRITE_TOKEN (or their _FILE variants), or pass --tokens FILE',
    });
  }
  return new TokenRing(entries, key);
}

/** The one token a service's callers share, from VARIABLE or VARIABLE_FILE (never argv), if set. */
export async function sharedToken(env: NodeJS.ProcessEnv, variable: string): Promise<TokenRing | undefined> {
  const token = await secret(env, variable);
  if (!token) return undefined;
  return new TokenRing([
    {
      name: 'caller',
      access: 'read',
      namespace: 'main',
      readFrom: [],
      digest: createHash('sha256').update(token).digest(),
    },
  ]);
}
