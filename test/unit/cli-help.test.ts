/**
 * `--help` is rendered from the option table that parses the arguments, so the two cannot drift:
 * every option a command takes is in its usage line and its options, and nothing else is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { defineCommand, optionsHelp, usageLine } from '../../tools/kmatrix/commands/command.ts';
import { repoRoot } from '../support/workspace.ts';

const cli = join(repoRoot, 'tools/kmatrix/cli.ts');

test('a command renders its usage line and options from the table it parses with', async () => {
  const options = {
    out: { type: 'string', value: 'DIR', help: 'where to write' },
    check: { type: 'boolean', default: true, help: 'skip the check' },
    only: { type: 'string', multiple: true, value: 'KEY', default: undefined, help: 'just these\n  (repeatable)' },
  } as const;
  assert.equal(
    usageLine({ name: 'demo', args: 'TARGET', options }),
    'Usage: npx kmatrix demo TARGET [--out DIR] [--no-check] [--only KEY]…',
  );
  assert.equal(
    optionsHelp(options),
    [
      'Options:',
      '  --out DIR   where to write',
      '  --no-check  skip the check',
      '  --only KEY  just these',
      '              (repeatable)',
      '  -h, --help  show this help',
      '',
    ].join('\n'),
  );
  let seen: unknown;
  const demo = defineCommand({
    name: 'demo',
    summary: 's',
    args: 'TARGET',
    about: 'About it.',
    options,
    run: async (parsed) => {
      seen = parsed;
      return 0;
    },
  });
  assert.match(demo.help, /^Usage: npx kmatrix demo TARGET \[--out DIR\][^\n]*\n\nAbout it\.\n\nOptions:\n/);
  await demo.run(['x', '--out', 'o', '--no-check', '--only', 'a', '--only', 'b']);
  assert.deepEqual(JSON.parse(JSON.stringify(seen)), {
    values: { out: 'o', check: false, only: ['a', 'b'] },
    positionals: ['x'],
  });
  await assert.rejects(demo.run(['--nope']), (e: Error) => /Unknown option '--nope'/.test(e.message));
});

test("every command's --help names exactly the options it accepts", async () => {
  const top = await execa(process.execPath, [cli, '--help']);
  const names = top.stdout
    .split('Commands:\n')[1]!
    .split('\n\n')[0]!
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0]!);
  assert.ok(names.length >= 19, `commands listed: ${names.join(', ')}`);
  for (const name of names) {
    const help = (await execa(process.execPath, [cli, name, '--help'])).stdout;
    const [usage, ...rest] = help.split('\n\n');
    const options = rest.at(-1)!;
    assert.match(usage!, new RegExp(`^Usage: npx kmatrix ${name}\\b`), name);
    const inUsage = [...usage!.matchAll(/[[\s](--[a-z-]+)/g)].map((m) => m[1]);
    const inOptions = [...options.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)]
      .map((m) => m[1])
      .filter((f) => f !== '--help');
    assert.deepEqual(inUsage, inOptions, `${name}: the usage line and the options list the same flags`);
    assert.ok(inOptions.length > 0, `${name} lists its options`);
  }
});

test('--json: one document from a command that takes part, none added to a command with a --json of its own', async () => {
  const printed: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    printed.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    const own = defineCommand({
      name: 'own',
      summary: 's',
      about: 'a',
      options: { json: { type: 'boolean', default: false, help: 'its own JSON' } },
      run: async () => {
        process.stdout.write('{"mine":1}\n');
        return 0;
      },
    });
    await own.run(['--json']);
    const shared = defineCommand({
      name: 'shared',
      summary: 's',
      about: 'a',
      json: true,
      options: {},
      run: async (_p, _d, out) => {
        out.print('for people');
        out.result({ answer: 42 });
        return 0;
      },
    });
    assert.match(shared.help, /--json +print one JSON document/);
    await shared.run(['--json']);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(printed[0], '{"mine":1}\n');
  assert.equal(printed.length, 2, printed.join(''));
  const doc = JSON.parse(printed[1]!);
  assert.deepEqual(
    { ...doc, kmatrix: 'v' },
    { kmatrix: 'v', command: 'shared', ok: true, exitCode: 0, result: { answer: 42 } },
  );
});
