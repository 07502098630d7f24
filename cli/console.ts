/**
 * `posthog-outbox console`: the operator console on a port of its own (src/console/server.ts), until
 * SIGTERM or SIGINT. Its flags come from the console's settings (src/console/settings-schema.ts). Logs one JSON
 * line when it listens (with its URL) and one per action.
 */
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { checkDatabaseUrl } from '../src/connection/config.ts';
import { startConsole } from '../src/console/server.ts';
import { withConnection } from '../src/ops/connection.ts';
import { CONSOLE_SETTINGS, type ConsoleSettingName, type ConsoleSettingSpec } from '../src/console/settings-schema.ts';
import { integer, databaseUrlOption, schemaOption } from './options.ts';

const PLACEHOLDER: Partial<Record<ConsoleSettingSpec['kind'], string>> = { host: 'host', port: 'port', secret: 'token', path: 'path' };

/** The flags of the console's settings that have one, in declaration order. */
const FLAGGED = (Object.keys(CONSOLE_SETTINGS) as ConsoleSettingName[]).filter((name) => (CONSOLE_SETTINGS[name] as ConsoleSettingSpec).flag !== undefined);

function consoleOption(name: ConsoleSettingName): Option {
  const spec: ConsoleSettingSpec = CONSOLE_SETTINGS[name];
  const placeholder = PLACEHOLDER[spec.kind];
  const byDefault = spec.defaultText ?? (spec.default === undefined ? undefined : String(spec.default));
  const option = new Option(`${spec.flag}${placeholder ? ` <${placeholder}>` : ''}`, `${spec.description}${byDefault ? ` (default: ${byDefault})` : ''}`);
  if (spec.kind === 'port') option.argParser(integer(spec.min!, spec.max!));
  return spec.env ? option.env(spec.env) : option;
}

export function consoleCommand(): Command {
  const command = new Command('console')
    .description(
      'Serve the operator console: a web page with the backlog, delivery over the last hour, the PostHog target, dead letters, profiles and workers; read only unless --allow-actions.',
    )
    .addOption(databaseUrlOption())
    .addOption(schemaOption());
  for (const name of FLAGGED) command.addOption(consoleOption(name));
  return command.action(runConsole);
}

interface Flags {
  databaseUrl?: string;
  schema: string;
  host?: string;
  port?: number | string;
  token?: string;
  allowActions?: boolean;
  basePath?: string;
}

async function runConsole(flags: Flags): Promise<void> {
  const databaseUrl = checkDatabaseUrl(flags.databaseUrl);
  await withConnection(databaseUrl, async () => undefined); // unreachable: exit 1 now, not a page of errors later
  const logger = pino({ base: { service: 'posthog-outbox console' } });
  const server = await startConsole({
    databaseUrl,
    schema: flags.schema,
    host: flags.host || CONSOLE_SETTINGS.host.default,
    // (from the environment, commander does not run the parser)
    port: flags.port === undefined || flags.port === '' ? CONSOLE_SETTINGS.port.default : integer(0, 65_535)(String(flags.port)),
    token: flags.token,
    allowActions: flags.allowActions === true,
    basePath: flags.basePath,
    logger,
  });
  logger.info({ url: server.url, actions: flags.allowActions === true, token: flags.token ? 'required' : 'none' }, 'console listening');
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop).off('SIGINT', stop);
      logger.info({ signal }, 'console stopping');
      server.close().finally(resolve);
    };
    process.on('SIGTERM', stop).on('SIGINT', stop);
  });
}
