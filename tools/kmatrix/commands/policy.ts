import { readFile } from 'node:fs/promises';
import { KmatrixError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { POLICY_FILE, validPolicy } from '../model/policy.ts';
import { parseWith } from '../core/json-file.ts';
import { migratePolicy, policyText } from '../model/policy-migration.ts';
import { FAMILIES, familyNames } from '../distros/registry.ts';
import { defineCommand, log } from './command.ts';

const about = `Brings a policy written by an older kmatrix up to date: each distro gets the "family"
(${familyNames().join(', ')}), "release" (and "distro", for a family that serves several) fields
kmatrix now needs, read from its name (debian-bookworm → "family": "deb", "release":
"bookworm"; fedora-41 → "family": "rpm", "distro": "fedora", "release": "41"), and family
"debian" becomes "deb". Every other field and its order is kept. A distro whose name does not
start with a distro is reported with the path to fill in by hand, and then nothing is written.
`;

export const policyCommand = defineCommand({
  name: 'policy',
  summary: 'migrate the policy to the current format',
  args: 'migrate',
  about,
  options: {
    policy: { type: 'string', default: POLICY_FILE, path: true, value: 'FILE', help: 'the policy' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1 || positionals[0] !== 'migrate')
      throw new KmatrixError('usage: kmatrix policy migrate', {
        stage: 'usage',
        remedy: 'see `npx kmatrix policy --help`',
      });
    const text = await readFile(values.policy, 'utf8').catch((error: Error) => {
      throw new KmatrixError(`cannot read ${values.policy}: ${error.message}`, {
        stage: 'policy',
        remedy: 'pass --policy FILE',
      });
    });
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new KmatrixError(`${values.policy} is not valid JSON: ${(error as Error).message}`, {
        stage: 'policy',
        remedy: 'fix the JSON first; nothing was written',
      });
    }
    const migration = migratePolicy(raw, FAMILIES, values.policy);
    if (migration.problems.length > 0)
      throw new KmatrixError('some distros need their family by hand', {
        stage: 'policy',
        problems: migration.problems,
        remedy: 'add the fields listed above; nothing was written',
      });
    if (migration.migrated.length === 0) {
      log(`${values.policy} is up to date`);
      return 0;
    }
    // The result must be a valid policy before it is written: if not, the user sees what is left to fix.
    parseWith(validPolicy(FAMILIES), migration.policy, {
      file: values.policy,
      stage: 'policy',
      what: 'migrated policy',
      remedy: 'fix the fields listed above; nothing was written',
    });
    await writeFileAtomic(values.policy, policyText(migration.policy));
    for (const m of migration.migrated) log(`distros.${m}`);
    log(`${values.policy}: ${migration.migrated.length} distro${migration.migrated.length === 1 ? '' : 's'} migrated`);
    return 0;
  },
});
