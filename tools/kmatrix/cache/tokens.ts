/**
 * Who may read and write the cache. Tokens come from the environment or from files, never from
 * argv (argv is visible to every user on the machine) and are never logged: the server keeps only
 * their SHA256 and compares in constant time. A token belongs to a namespace: it writes there and
 * reads there first, then from its `readFrom` namespaces — so a pull request can write to its own
 * namespace and read main's, while main never reads anything a pull request wrote.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { KmatrixError } from '../core/errors.ts';
import { readJsonFile } from '../core/json-file.ts';
import { sha256Hex } from '../model/names.ts';

const namespace = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be lower-case letters, digits, ".", "_" or "-"');

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

  constructor(entries: Entry[]) {
    this.entries = entries;
  }

  get size(): number {
    return this.entries.length;
  }

  /** The client a bearer token belongs to, or undefined. Every entry is compared (constant time). */
  identify(token: string | undefined): Client | undefined {
    if (!token) return undefined;
    const digest = createHash('sha256').update(token).digest();
    let found: Entry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, digest) && !found) found = e;
    return found && { name: found.name, access: found.access, namespace: found.namespace, readFrom: found.readFrom };
  }
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
  if (entries.length === 0) {
    throw new KmatrixError('no cache tokens configured: the server would let nobody in', {
      stage: 'cache',
      remedy:
        'set KMATRIX_CACHE_READ_TOKEN and KMATRIX_CACHE_WRITE_TOKEN (or their _FILE variants), or pass --tokens FILE',
    });
  }
  return new TokenRing(entries);
}
