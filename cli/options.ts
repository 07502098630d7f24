/** Option parsers shared by the subcommands: bad values fail with commander's one-line usage error. */
import { InvalidArgumentError, Option } from 'commander';

export function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    return n;
  };
}

export function databaseUrlOption(): Option {
  return new Option('--database-url <url>', 'PostgreSQL connection URL').env('DATABASE_URL');
}

export function schemaOption(): Option {
  return new Option('--schema <name>', 'Postgres schema of the outbox tables').env('POSTHOG_OUTBOX_SCHEMA').default('posthog_outbox');
}
