#!/usr/bin/env node
/**
 * The `posthog-outbox` command: one binary, a subcommand each. Exit codes: 0 success, 1 the operation
 * failed (database unreachable, ...), 2 bad usage or configuration.
 */
import { Command, CommanderError } from 'commander';
import { OutboxError } from '../src/errors.ts';
import { migrateCommand } from './migrate.ts';
import { workerCommand } from './worker.ts';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const program = new Command('posthog-outbox')
  .description('Transactional outbox for PostHog analytics: schema migrations and the delivery worker.')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const command of [migrateCommand(), workerCommand()]) program.addCommand(command.copyInheritedSettings(program));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander already printed the message (or the help / version text).
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  } else if (error instanceof OutboxError) {
    process.stderr.write(`posthog-outbox: ${error.message}\n`);
    process.exitCode = EXIT_USAGE;
  } else {
    process.stderr.write(`posthog-outbox: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT_FAILURE;
  }
}
