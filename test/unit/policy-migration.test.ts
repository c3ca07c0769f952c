/** A policy written before distros named their family: `kmatrix policy migrate` brings it up to date. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migratePolicy, policyText } from '../../tools/kmatrix/model/policy-migration.ts';
import { repoRoot } from '../support/workspace.ts';

const committed = readFileSync(join(repoRoot, 'support-matrix.json'), 'utf8');

test("today's policy without family and release migrates to exactly the committed file, and again to itself", () => {
  const old = JSON.parse(committed);
  for (const d of Object.values(old.distros) as Record<string, unknown>[]) {
    delete d.family;
    delete d.release;
  }
  const m = migratePolicy(old, ['debian'], 'support-matrix.json');
  assert.deepEqual(m.problems, []);
  assert.deepEqual(m.migrated, [
    'debian-bullseye: debian/bullseye',
    'debian-bookworm: debian/bookworm',
    'debian-trixie: debian/trixie',
  ]);
  assert.equal(policyText(m.policy), committed);
  assert.deepEqual(migratePolicy(m.policy, ['debian'], 'support-matrix.json').migrated, []);
});

test('a distro whose name names no family is left for the user, with its path', () => {
  const m = migratePolicy(
    { distros: { prod: { toolchain: 't' }, 'debian-': { toolchain: 't' } } },
    ['debian'],
    'p.json',
  );
  assert.deepEqual(m.migrated, []);
  assert.deepEqual(m.problems, [
    'p.json: distros.prod: add "family" (one of: debian) and "release" by hand: its name does not start with a family',
    'p.json: distros.debian-: add "family" (one of: debian) and "release" by hand: its name does not start with a family',
  ]);
});
