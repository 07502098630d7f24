/**
 * How the CLI shows an error, in one place (cli/program.ts calls it for whatever a command throws). An
 * OutboxError is bad input, exit 2, shown as one line that names its field as the command line sets it:
 * a setting or option by its flag and environment variable (`--batch-size (POSTHOG_OUTBOX_BATCH_SIZE): must
 * be a whole number from 1 to 10000, got 0`); a field the command has no flag for is shown as it is. The
 * message is built from `field` and `detail`, never cut out of `message`. Anything else is a failure of
 * the operation, exit 1.
 */
import type { Command } from 'commander';
import { CONSOLE_SETTINGS } from '../src/console/settings-schema.ts';
import { OutboxError, type OutboxErrorCode } from '../src/errors/errors.ts';
import { SETTINGS } from '../worker/settings/schema.ts';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The flag of each library field that is not a worker setting. */
const OTHER_FLAGS: Readonly<Record<string, string>> = {
  databaseUrl: '--database-url',
  directUrl: '--direct-url',
  ids: '--id',
};

/** What the CLI adds to the library's word on a fault of this kind. */
const CLI_HINTS: Partial<Record<OutboxErrorCode, string>> = {
  transaction_pooler: 'posthog-outbox takes the direct URL in DIRECT_DATABASE_URL (--direct-url).',
};

/**
 * The flag that set `field` on `command`, with its environment variable: `--batch-size
 * (POSTHOG_OUTBOX_BATCH_SIZE)`, `--id`; undefined when the command has no flag for it. The library's
 * `databaseUrl` is the session URL: DIRECT_DATABASE_URL when one was given.
 */
export function flagOf(field: string, command: Command): string | undefined {
  const direct = field === 'databaseUrl' && hasValue(command.opts().directUrl);
  const declared = { ...CONSOLE_SETTINGS, ...SETTINGS } as Record<string, { flag?: string }>;
  const flag = direct ? '--direct-url' : (declared[field]?.flag ?? OTHER_FLAGS[field]);
  const option = flag === undefined ? undefined : command.options.find((o) => o.long === flag);
  if (!option) return undefined;
  return option.envVar ? `${flag} (${option.envVar})` : flag;
}

function hasValue(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

/** The line to print (without `posthog-outbox: `) and the exit code for an error a command threw. */
export function formatError(error: unknown, command?: Command): { line: string; exitCode: number } {
  if (!(error instanceof OutboxError)) return { line: error instanceof Error ? error.message : String(error), exitCode: EXIT_FAILURE };
  const field = (command && flagOf(error.field, command)) ?? error.field;
  const hint = CLI_HINTS[error.code];
  return { line: `${field}: ${error.detail}${hint ? ` ${hint}` : ''}`, exitCode: EXIT_USAGE };
}
