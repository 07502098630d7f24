/**
 * `posthog-outbox worker`'s settings on the command line, derived from their declaration: every flag and
 * variable, the help with its default, and bad values refused with one line that names the flag and the
 * variable, exit 2, before anything connects, without echoing a secret.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { formatError } from '../../cli/errors.ts';
import { databaseUrlOption, directUrlOption } from '../../cli/options.ts';
import { CLI_SETTINGS, settingOption, settingsInput } from '../../cli/settings.ts';
import { OutboxError } from '../../src/errors/errors.ts';
import { SETTINGS, type SettingName, type SettingSpec } from '../../worker/settings/schema.ts';
import { runCli } from '../support/cli.ts';

const spec = (name: SettingName): SettingSpec => SETTINGS[name];

/** A command with the worker's options, parsed from `argv` and `env`. */
function parsed(argv: string[], env: Record<string, string> = {}): Command {
  const command = new Command('worker').exitOverride().addOption(databaseUrlOption()).addOption(directUrlOption());
  for (const name of CLI_SETTINGS) command.addOption(settingOption(name));
  const saved = { ...process.env };
  for (const key of Object.keys(process.env)) if (/^(POSTHOG_|DATABASE_URL|DIRECT_DATABASE_URL)/.test(key)) delete process.env[key];
  Object.assign(process.env, env);
  try {
    command.parse(argv, { from: 'user' });
  } finally {
    process.env = saved;
  }
  return command;
}

describe('settingsInput: flags and variables to startWorker options', () => {
  it.each<[string, string[], Record<string, string>, object]>([
    ['nothing given: nothing set (the defaults are the resolver’s)', [], {}, {}],
    ['counts', ['--batch-size', '500', '--concurrency', '4'], {}, { batchSize: 500, concurrency: 4 }],
    [
      'durations in every unit',
      ['--max-age', '36h', '--request-timeout', '500ms', '--lease', '90s', '--identify-refresh', '0', '--dead-letter-retention', '30d'],
      {},
      { maxAgeMs: 129_600_000, posthog: { requestTimeoutMs: 500 }, leaseMs: 90_000, identifyRefreshMs: 0, deadLetterRetentionMs: 2_592_000_000 },
    ],
    ['a variable', [], { POSTHOG_OUTBOX_RETRY_MAX_DELAY: '5m' }, { backoff: { maxMs: 300_000 } }],
    ['a flag wins over its variable', ['--batch-size', '7'], { POSTHOG_OUTBOX_BATCH_SIZE: '9' }, { batchSize: 7 }],
    ['an empty variable is unset', [], { POSTHOG_OUTBOX_BATCH_SIZE: '' }, {}],
    ['metrics with a port', ['--metrics-port', '9464', '--metrics-host', '127.0.0.1'], {}, { metrics: { port: 9464, host: '127.0.0.1' } }],
    ['a metrics host without a port: not served', ['--metrics-host', '127.0.0.1'], {}, {}],
    [
      'the PostHog target',
      ['--posthog-host', 'https://eu.i.posthog.com'],
      { POSTHOG_API_KEY: 'phc_k' },
      { posthog: { apiKey: 'phc_k', host: 'https://eu.i.posthog.com' } },
    ],
    ['the shutdown timeout', ['--shutdown-timeout', '3s'], {}, { shutdownTimeoutMs: 3_000 }],
  ])('%s', (_name, argv, env, input) => {
    expect(settingsInput(parsed(argv, env).opts())).toEqual({ posthog: {}, ...input });
  });

  it('every setting the CLI has a flag for has a variable, a placeholder and its default in the help', () => {
    for (const name of CLI_SETTINGS) {
      const option = settingOption(name);
      expect(option.envVar, name).toBe(spec(name).env);
      expect(option.flags, name).toMatch(/^--[a-z-]+ <[a-z]+>$/);
      if (spec(name).default !== undefined || spec(name).defaultText !== undefined) expect(option.description, name).toMatch(/\(default: .+\)$/);
    }
  });
});

describe('formatError: one line at the edge', () => {
  const worker = parsed([]);
  it.each<[string, unknown, Command | undefined, string, number]>([
    [
      'a setting: its flag and variable',
      new OutboxError('invalid', 'batchSize', 'must be a whole number from 1 to 10000, got 0'),
      worker,
      '--batch-size (POSTHOG_OUTBOX_BATCH_SIZE): must be a whole number from 1 to 10000, got 0',
      2,
    ],
    [
      'a nested setting',
      new OutboxError('invalid', 'posthog.requestTimeoutMs', 'must be …'),
      worker,
      '--request-timeout (POSTHOG_OUTBOX_REQUEST_TIMEOUT): must be …',
      2,
    ],
    ['a setting without a flag: as it is', new OutboxError('invalid', 'maxPassMs', 'must be …'), worker, 'maxPassMs: must be …', 2],
    ['a setting the command has no flag for: as it is', new OutboxError('invalid', 'batchSize', 'x'), new Command('status'), 'batchSize: x', 2],
    ['the session URL: DATABASE_URL', new OutboxError('invalid', 'databaseUrl', 'x'), worker, '--database-url (DATABASE_URL): x', 2],
    [
      'the session URL: DIRECT_DATABASE_URL when given',
      new OutboxError('invalid', 'databaseUrl', 'x'),
      parsed(['--direct-url', 'postgres://h/db']),
      '--direct-url (DIRECT_DATABASE_URL): x',
      2,
    ],
    [
      'a transaction pooler: what to do with the CLI',
      new OutboxError('transaction_pooler', 'databaseUrl', 'leads to a transaction-mode connection pooler.'),
      worker,
      '--database-url (DATABASE_URL): leads to a transaction-mode connection pooler. posthog-outbox takes the direct URL in DIRECT_DATABASE_URL (--direct-url).',
      2,
    ],
    ['no command: the field as it is', new OutboxError('required', 'posthog.apiKey', 'is not set'), undefined, 'posthog.apiKey: is not set', 2],
    ['any other error: a runtime failure', new Error('cannot reach the database'), worker, 'cannot reach the database', 1],
  ])('%s', (_name, error, command, line, exitCode) => {
    expect(formatError(error, command)).toEqual({ line, exitCode });
  });
});

describe('posthog-outbox worker refuses each bad setting', () => {
  const PASSWORD = 'pw-S3cret-7c1';
  const KEY = 'phc_settings_secret_key';
  const env = (extra: Record<string, string>) => ({
    ...Object.fromEntries(CLI_SETTINGS.map((name) => [spec(name).env, undefined])),
    DATABASE_URL: `postgres://ops:${PASSWORD}@127.0.0.1:1/app`,
    POSTHOG_API_KEY: KEY,
    ...extra,
  });
  /** A value each numeric setting refuses: not a number, and not a duration. */
  const NUMERIC = CLI_SETTINGS.filter((name) => spec(name).min !== undefined);
  const cases = NUMERIC.flatMap((name): [string, string[], Record<string, string>, SettingName][] => [
    [`${spec(name).flag} out of range`, [spec(name).flag!, spec(name).kind === 'duration' ? '3651d' : '70000'], {}, name],
    [`${spec(name).env} that does not parse`, [], { [spec(name).env!]: 'soon' }, name],
  ]);
  cases.push(['a PostHog host that is no URL', ['--posthog-host', 'posthog'], {}, 'posthog.host']);
  cases.push(['a schema name', [], { POSTHOG_OUTBOX_SCHEMA: 'Bad-Name' }, 'schema']);
  cases.push(['an unknown capture mode', ['--capture-mode', 'v2'], {}, 'posthog.captureMode']);
  cases.push(['an unknown POSTHOG_CAPTURE_MODE', [], { POSTHOG_CAPTURE_MODE: 'V1' }, 'posthog.captureMode']);

  it.each(cases)('%s: exits 2 with one line naming the flag and the variable, no secret', async (_label, args, extra, name) => {
    const result = await runCli(['worker', ...args], { env: env(extra) });
    expect(result.code).toBe(2);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`posthog-outbox: ${spec(name).flag} (${spec(name).env}): `);
    expect(lines[0]).toMatch(/must be|must match|is not a URL/);
    for (const secret of [PASSWORD, KEY]) expect(result.stderr + result.stdout).not.toContain(secret);
  });
});
