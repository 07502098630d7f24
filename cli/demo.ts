/**
 * `posthog-outbox demo` (`npm start`): the whole data path on this machine, with nothing to configure.
 *
 * With no environment it starts an embedded PostgreSQL (data under `.data/demo-<pid>/`, deleted at exit),
 * migrates it, starts the PostHog-compatible capture server on loopback and the worker, plays realistic
 * handler traffic through the public API, waits until the outbox is empty and prints what PostHog
 * received. Then it stops everything it started, also on Ctrl-C at any point.
 *
 * DATABASE_URL uses that server instead (the demo writes to its own outbox schema, `posthog_outbox_demo`,
 * so an application's real outbox is never drained); POSTHOG_API_KEY (and POSTHOG_HOST) deliver to that
 * PostHog project instead of the local capture server, and the demo then prints what it sent.
 *
 * This module reads the flags and the environment; the demo itself is in dev/demo/.
 */
import { Command, Option } from 'commander';
import { DEMO_SCHEMA_ON_YOUR_SERVER, runDemo, type DemoConfig } from '../dev/demo/run.ts';
import { checkDatabaseUrl } from '../src/connection/config.ts';
import { OutboxError } from '../src/errors/errors.ts';
import { quoteSchema } from '../src/outbox/columns.ts';
import { checkPostHogHost } from '../worker/settings/settings.ts';
import { defaultOf } from '../worker/settings/schema.ts';
import { databaseUrlOption, duration } from './options.ts';
import { settingOption } from './settings.ts';

interface DemoFlags {
  databaseUrl?: string;
  posthogApiKey?: string;
  posthogHost?: string;
  schema?: string;
  /** Milliseconds. */
  timeout: number;
  verbose?: boolean;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'Run the whole path on this machine (what `npm start` runs): embedded PostgreSQL, migrations, a local PostHog-compatible ' +
        'capture server, simulated chat and automation traffic, the worker; then print what PostHog received and stop everything. ' +
        'DATABASE_URL / POSTHOG_API_KEY / POSTHOG_HOST use your server / PostHog project instead.',
    )
    .addOption(databaseUrlOption())
    .addOption(
      settingOption('posthog.apiKey', { description: 'deliver to this PostHog project instead of the local capture server (prefer the environment variable)' }),
    )
    .addOption(settingOption('posthog.host', { description: 'PostHog host, with --posthog-api-key' }))
    .addOption(
      new Option('--schema <name>', `outbox schema (default: ${defaultOf('schema')} on the embedded server, ${DEMO_SCHEMA_ON_YOUR_SERVER} on DATABASE_URL's)`),
    )
    .addOption(new Option('--timeout <duration>', 'how long to wait for the outbox to empty').argParser(duration(1_000, 3_600_000)).default(60_000, '1m'))
    .option('--verbose', "the worker's JSON logs on stderr")
    .action(async (flags: DemoFlags) => {
      await runDemo(demoConfig(flags));
    });
}

function set(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** The demo's configuration from its flags: bad input exits 2 before anything starts. */
function demoConfig(flags: DemoFlags): DemoConfig {
  const databaseUrl = set(flags.databaseUrl) === undefined ? undefined : checkDatabaseUrl(flags.databaseUrl);
  const apiKey = set(flags.posthogApiKey);
  const host = set(flags.posthogHost);
  if (host !== undefined && apiKey === undefined) {
    throw new OutboxError(
      'required',
      'posthog.apiKey',
      'is not set but POSTHOG_HOST is; give the project API key too, or unset POSTHOG_HOST to use the local capture server',
    );
  }
  const posthog = apiKey === undefined ? undefined : { apiKey, host: checkPostHogHost(host ?? defaultOf('posthog.host')) };
  const schema = flags.schema ?? (databaseUrl ? DEMO_SCHEMA_ON_YOUR_SERVER : defaultOf('schema'));
  quoteSchema(schema);
  return {
    databaseUrl,
    posthog,
    schema,
    timeoutMs: flags.timeout,
    verbose: flags.verbose === true,
  };
}
