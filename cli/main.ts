#!/usr/bin/env node
/**
 * The `posthog-outbox` command: one binary, a subcommand each. Exit codes: 0 success, 1 the operation
 * failed (database unreachable, ...), 2 bad usage or configuration.
 */
import { Command, CommanderError } from 'commander';
import { OutboxError } from '../src/errors.ts';
import { backfillCommand } from './backfill.ts';
import { deadLettersCommand } from './dead-letters.ts';
import { demoCommand } from './demo.ts';
import { migrateCommand } from './migrate.ts';
import { statusCommand } from './status.ts';
import { workerCommand } from './worker.ts';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const program = new Command('posthog-outbox')
  .description('Transactional outbox for PostHog analytics: migrations, the delivery worker, operator commands (status, dead letters, profile backfill) and a local demo.')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

/** Subcommands (and theirs, e.g. `dead-letters list`) share the program's error handling and exit codes. */
function inherit(command: Command, parent: Command): Command {
  command.copyInheritedSettings(parent);
  for (const sub of command.commands) inherit(sub, command);
  return command;
}
for (const command of [migrateCommand(), workerCommand(), statusCommand(), deadLettersCommand(), backfillCommand(), demoCommand()]) program.addCommand(inherit(command, program));

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
