/** Reading a JSON file through a zod schema, with errors that name the file and the field. */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { KmatrixError, type Stage } from './errors.ts';

/** JSON-path style: matrix[0].archs[1], drivers["../x"] for keys that are not plain names. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((key, i) => {
      if (typeof key === 'number') return `[${key}]`;
      const name = String(key);
      if (/^[A-Za-z_$][\w$-]*$/.test(name)) return `${i === 0 ? '' : '.'}${name}`;
      return `[${JSON.stringify(name)}]`;
    })
    .join('');
}

export function zodProblems(file: string, error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    // A bad record key: zod nests the key schema's own complaint, which is the useful part.
    const nested = issue.code === 'invalid_key' ? issue.issues.map((i) => i.message).join('; ') : '';
    return `${file}: ${formatIssuePath(issue.path)}: ${nested ? `invalid key: ${nested}` : issue.message}`;
  });
}

export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: { file: string; stage: Stage; what: string; remedy: string },
): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new KmatrixError(`invalid ${where.what} in ${where.file}`, {
      stage: where.stage,
      problems: zodProblems(where.file, result.error),
      remedy: where.remedy,
    });
  }
  return result.data;
}

export async function readJsonFile<S extends z.ZodType>(
  schema: S,
  file: string,
  where: { stage: Stage; what: string; remedy: string },
): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new KmatrixError(`cannot read ${where.what} ${file}${code ? ` (${code})` : ''}`, {
      stage: where.stage,
      cause: error,
      remedy: where.remedy,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new KmatrixError(`${file} is not valid JSON: ${(error as Error).message}`, {
      stage: where.stage,
      cause: error,
      remedy: where.remedy,
    });
  }
  return parseWith(schema, value, { file, ...where });
}

/**
 * A record we wrote ourselves, if it is there and still in our format: undefined when the file is
 * missing, not JSON or of another shape (an older kmatrix, a partial copy) — never an error, since
 * its absence only means "not known yet".
 *
 * Read synchronously: these records are small and read by the thousand (a run summary of 5,000
 * cached targets), and one blocking read is ~4× cheaper than fs/promises' open, stat, read and
 * close, each a round trip through libuv's thread pool (profiled).
 */
export async function readOwnRecord<S extends z.ZodType>(schema: S, file: string): Promise<z.infer<S> | undefined> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
