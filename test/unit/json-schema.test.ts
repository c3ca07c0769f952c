/** The committed JSON Schemas are what the zod schemas generate today. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSchema, SCHEMA_FILES } from '../../tools/kmatrix/model/json-schema.ts';
import { repoRoot } from '../support/workspace.ts';

for (const s of SCHEMA_FILES) {
  test(`${s.file} is current (regenerate with \`npx kmatrix schema\`)`, () => {
    assert.equal(readFileSync(join(repoRoot, s.file), 'utf8'), renderSchema(s.title, s.schema));
  });
}

test('the policy schema rejects unknown fields, as the CLI does', () => {
  const schema = JSON.parse(readFileSync(join(repoRoot, 'support-matrix.schema.json'), 'utf8'));
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.properties.matrix.items.properties.archs.items.enum, ['x86_64', 'aarch64']);
});
