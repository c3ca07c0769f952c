#!/usr/bin/env node
/**
 * The kmatrix command line. This is the one place that maps errors to text and exit codes:
 * 0 done, 1 failed (the message says why and what to do), 2 wrong usage. Commands run from the
 * workspace root found above the current folder (core/workspace-root.ts), so they work from any
 * subfolder; paths the user typed are read from where they were typed.
 */
import { KmatrixError, renderError } from './core/errors.ts';
import { KMATRIX_VERSION } from './core/version.ts';
import { findWorkspaceRoot } from './core/workspace-root.ts';
import type { Command } from './commands/command.ts';
import { crawlCommand } from './commands/crawl.ts';
import { initCommand } from './commands/init.ts';
import { genCommand } from './commands/gen.ts';
import { toolchainCommand } from './commands/toolchain.ts';
import { buildCommand } from './commands/build.ts';
import { schemaCommand } from './commands/schema.ts';
import { policyCommand } from './commands/policy.ts';
import { diffCommand } from './commands/diff.ts';
import { serveCacheCommand } from './commands/serve-cache.ts';
import { cacheCommand } from './commands/cache.ts';
import { reproduceCommand } from './commands/reproduce.ts';
import { reportCommand } from './commands/report.ts';
import { driverCommand } from './commands/driver.ts';
import { bootCommand } from './commands/boot.ts';
import { kmmCommand } from './commands/kmm.ts';
import { publishCommand } from './commands/publish.ts';
import { verifyCommand } from './commands/verify.ts';
import { shardCommand } from './commands/shard.ts';
import { dispatchCommand } from './commands/dispatch.ts';
import { requestCommand, serveRequestsCommand } from './commands/request.ts';

const commands: Command[] = [
  initCommand,
  crawlCommand,
  genCommand,
  driverCommand,
  diffCommand,
  toolchainCommand,
  buildCommand,
  bootCommand,
  reproduceCommand,
  reportCommand,
  shardCommand,
  dispatchCommand,
  publishCommand,
  kmmCommand,
  verifyCommand,
  requestCommand,
  serveRequestsCommand,
  serveCacheCommand,
  cacheCommand,
  schemaCommand,
  policyCommand,
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: npx kmatrix <command> [options]',
    '       npx kmatrix --version',
    '',
    'Builds out-of-tree Linux kernel drivers for every driver × distro × kernel × arch in',
    'support-matrix.json; Nx (`npx nx run-many -t build-driver`) runs and caches the builds.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run `npx kmatrix <command> --help` for a command's options.",
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${KMATRIX_VERSION}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    throw new KmatrixError(`unknown command "${name}"`, {
      stage: 'usage',
      remedy: `commands: ${commands.map((c) => c.name).join(', ')}; see \`npx kmatrix --help\``,
    });
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help);
    return 0;
  }
  const invokedIn = process.cwd();
  const root = command.atWorkspaceRoot === false ? undefined : findWorkspaceRoot(invokedIn);
  if (root && root !== invokedIn) process.chdir(root);
  return command.run(rest, invokedIn);
}

// `kmatrix … | head` closes the pipe early: that ends the output, it is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${renderError(error)}\n`);
    process.exitCode = error instanceof KmatrixError && error.stage === 'usage' ? 2 : 1;
  },
);
