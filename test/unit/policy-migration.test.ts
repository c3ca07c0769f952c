/** A policy written before distros named their family: `kmatrix policy migrate` brings it up to date. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migratePolicy, policyText } from '../../tools/kmatrix/model/policy-migration.ts';
import { repoRoot } from '../support/workspace.ts';
import { FAMILIES } from '../../tools/kmatrix/distros/registry.ts';

const committed = readFileSync(join(repoRoot, 'support-matrix.json'), 'utf8');

test("today's policy without family and release migrates to exactly the committed file, and again to itself", () => {
  const old = JSON.parse(committed);
  for (const d of Object.values(old.distros) as Record<string, unknown>[]) {
    delete d.family;
    delete d.release;
  }
  const m = migratePolicy(old, FAMILIES, 'support-matrix.json');
  assert.deepEqual(m.problems, []);
  assert.deepEqual(m.migrated, [
    'debian-bullseye: deb/debian/bullseye',
    'debian-bookworm: deb/debian/bookworm',
    'debian-trixie: deb/debian/trixie',
  ]);
  assert.equal(policyText(m.policy), committed);
  assert.deepEqual(migratePolicy(m.policy, FAMILIES, 'support-matrix.json').migrated, []);
});

test('family "debian" becomes "deb"; an RPM distro gets its os-release ID', () => {
  const m = migratePolicy(
    {
      distros: {
        bookworm: { family: 'debian', release: 'bookworm', toolchain: 't' },
        'fedora-41': { toolchain: 't' },
      },
    },
    FAMILIES,
    'p.json',
  );
  assert.deepEqual(m.problems, []);
  assert.deepEqual(m.policy, {
    distros: {
      bookworm: { family: 'deb', release: 'bookworm', toolchain: 't' },
      'fedora-41': { family: 'rpm', distro: 'fedora', release: '41', toolchain: 't' },
    },
  });
});

test('a distro whose name names no family is left for the user, with its path', () => {
  const m = migratePolicy({ distros: { prod: { toolchain: 't' }, 'debian-': { toolchain: 't' } } }, FAMILIES, 'p.json');
  assert.deepEqual(m.migrated, []);
  assert.equal(m.problems.length, 2);
  assert.match(
    m.problems[0]!,
    /^p\.json: distros\.prod: add "family" \(one of: deb, rpm\) and "release" by hand: its name does not start with a distro \(debian, /,
  );
  assert.match(m.problems[1]!, /^p\.json: distros\.debian-: add "family"/);
});
