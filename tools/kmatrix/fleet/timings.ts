import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../core/atomic-file.ts';

export const timingsSchema = z.record(z.string(), z.number().nonnegative());
export type Timings = z.infer<typeof timingsSchema>;

export async function loadTimings(file: string): Promise<Timings> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (!text) return {};
  try {
    const parsed = timingsSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** Merges seconds per project into the file (newer wins), sorted so the file diffs well. */
export async function recordTimings(file: string, seconds: Timings): Promise<void> {
  if (Object.keys(seconds).length === 0) return;
  const merged = { ...(await loadTimings(file)), ...seconds };
  const sorted = Object.fromEntries(
    Object.entries(merged)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, Math.round(v * 10) / 10]),
  );
  await writeFileAtomic(file, `${JSON.stringify(sorted, null, 2)}\n`);
}
