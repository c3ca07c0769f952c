import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KmatrixError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { renderSchema, SCHEMA_FILES } from '../model/json-schema.ts';
import { defineCommand, log } from './command.ts';

const about = `Writes the JSON Schemas generated from kmatrix's own validation (zod) schemas:
${SCHEMA_FILES.map((s) => `  ${s.file.padEnd(34)} ${s.title}`).join('\n')}
Editors use them (via "$schema") to check those files as you type.
`;

export const schemaCommand = defineCommand({
  name: 'schema',
  summary: 'write (or --check) the JSON Schemas of the policy and toolchain files',
  about,
  options: {
    check: { type: 'boolean', default: false, help: 'write nothing; fail if a committed schema is out of date' },
  },
  async run({ values }) {
    const root = resolve('.');
    const stale: string[] = [];
    for (const s of SCHEMA_FILES) {
      const text = renderSchema(s.title, s.schema);
      const current = await readFile(join(root, s.file), 'utf8').catch(() => '');
      if (current === text) continue;
      if (values.check) stale.push(s.file);
      else {
        await writeFileAtomic(join(root, s.file), text);
        log(`wrote ${s.file}`);
      }
    }
    if (stale.length > 0) {
      throw new KmatrixError(`out of date: ${stale.join(', ')}`, {
        stage: 'usage',
        remedy: 'run `npx kmatrix schema` and commit the result',
      });
    }
    return 0;
  },
});
