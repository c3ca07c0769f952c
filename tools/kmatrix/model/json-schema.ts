/**
 * JSON Schemas generated from the zod schemas (never written by hand), so editors can validate
 * support-matrix.json and toolchain.json as you type and the two can never disagree.
 */
import { z } from 'zod';
import { policySchema } from './policy.ts';
import { toolchainSchema } from './toolchain.ts';
import { stableJson } from '../core/atomic-file.ts';

export const SCHEMA_FILES: { file: string; title: string; schema: z.ZodType }[] = [
  { file: 'support-matrix.schema.json', title: 'kmatrix support-matrix policy', schema: policySchema },
  { file: 'toolchains/toolchain.schema.json', title: 'kmatrix toolchain description', schema: toolchainSchema },
];

export function renderSchema(title: string, schema: z.ZodType): string {
  return stableJson({ title, ...z.toJSONSchema(schema, { io: 'input' }) });
}
