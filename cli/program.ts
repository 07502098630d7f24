/**
 * The `posthog-outbox` command's program (cli/main.ts runs it): one binary, a subcommand each. Exit codes: 0 success, 1 the operation
 * failed (database unreachable, ...), 2 bad usage or configuration.
 */
import { Command, CommanderError } from 'commander';
import { EXIT_USAGE, formatError } from './errors.ts';

/** The subcommand that runs, once parsed: its flags name the fields of its errors. */
let acting: Command | undefined;

const program = new Command('posthog-outbox')
  .description(
    'Transactional outbox for PostHog analytics: migrations, the delivery worker, operator commands (status, dead letters, profile backfill, the web console) and a local demo.',
  )
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .hook('preAction', (_program, command) => {
    acting = command;
  });

/** Subcommands (and theirs, e.g. `dead-letters list`) share the program's error handling and exit codes. */
function inherit(command: Command, parent: Command): Command {
  command.copyInheritedSettings(parent);
  for (const sub of command.commands) inherit(sub, command);
  return command;
}

/**
 * The subcommands, in help order, each loaded from its own module. A run of one subcommand loads only that
 * module, so `posthog-outbox worker` never loads the demo's, the backfill's or migrate's dependencies
 * (drizzle-orm alone costs ~190 MB of RSS on Node 24). Anything else (help, a typo) loads them all, so
 * help, `help <command>` and "did you mean" see every command.
 */
const SUBCOMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<Command>]> = [
  ['migrate', async () => (await import('./migrate.ts')).migrateCommand()],
  ['worker', async () => (await import('./worker.ts')).workerCommand()],
  ['status', async () => (await import('./status.ts')).statusCommand()],
  ['dead-letters', async () => (await import('./dead-letters.ts')).deadLettersCommand()],
  ['backfill-profiles', async () => (await import('./backfill.ts')).backfillCommand()],
  ['forget', async () => (await import('./forget.ts')).forgetCommand()],
  ['console', async () => (await import('./console.ts')).consoleCommand()],
  ['demo', async () => (await import('./demo.ts')).demoCommand()],
];
/** Parses the command line and runs the subcommand; sets the exit code. */
export async function run(): Promise<void> {
  const invoked = SUBCOMMANDS.filter(([name]) => name === process.argv[2]);
  for (const command of await Promise.all((invoked.length > 0 ? invoked : SUBCOMMANDS).map(([, load]) => load())))
    program.addCommand(inherit(command, program));

  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed the message (or the help / version text).
      process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    const { line, exitCode } = formatError(error, acting);
    process.stderr.write(`posthog-outbox: ${line}\n`);
    process.exitCode = exitCode;
  }
}
