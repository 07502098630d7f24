/**
 * The worker's settings on the command line, derived from their one declaration (worker/settings/settings.ts
 * `SETTINGS`): a flag and environment variable for each that has them, its help with its default, and the
 * parsing of what was given into `startWorker`'s options. Unset values stay unset: their defaults and
 * ranges are the resolver's, and its errors name the setting (cli/errors.ts names the flag).
 */
import { Option } from 'commander';
import { DURATION_UNITS, parseDuration } from '../worker/settings/duration.ts';
import { OutboxError } from '../src/errors/errors.ts';
import type { SettingsInput } from '../worker/settings/settings.ts';
import { defaultText, expected, SETTINGS, type SettingKind, type SettingName, type SettingSpec } from '../worker/settings/schema.ts';

const PLACEHOLDER: Readonly<Record<SettingKind, string>> = {
  count: 'n',
  port: 'port',
  duration: 'duration',
  secret: 'key',
  url: 'url',
  name: 'name',
  host: 'host',
  cron: 'cron',
  choice: 'mode',
};

/** The settings the CLI has a flag for, in help order. */
export const CLI_SETTINGS = (Object.keys(SETTINGS) as SettingName[]).filter((name) => (SETTINGS[name] as SettingSpec).flag !== undefined);

/**
 * The option of a setting: `--batch-size <n>`, its help with its default, its environment variable. Its
 * value is left unset when not given (the resolver's default applies), unless `valued` (for a command that
 * reads the value itself). Another command that reads the same setting (backfill-profiles,
 * `--identify-refresh`) may say what it does there.
 */
export function settingOption(name: SettingName, { description, valued = false }: { description?: string; valued?: boolean } = {}): Option {
  const spec: SettingSpec = SETTINGS[name];
  const what = description ?? `${spec.description}${spec.zero ? `; 0: ${spec.zero}` : ''}`;
  const byDefault = defaultText(spec);
  const option = new Option(`${spec.flag} <${PLACEHOLDER[spec.kind]}>`, valued || byDefault === undefined ? what : `${what} (default: ${byDefault})`);
  if (valued && spec.default !== undefined) option.default(spec.default, byDefault);
  return spec.env ? option.env(spec.env) : option;
}

/** The value given for a setting, as the library takes it; OutboxError naming the setting when it does not parse. */
export function parseSetting(name: SettingName, text: string): string | number {
  const spec: SettingSpec = SETTINGS[name];
  if (spec.kind === 'duration') {
    const ms = parseDuration(text);
    if (ms === undefined)
      throw new OutboxError('invalid', name, `must be ${expected(name)}, with a unit (${DURATION_UNITS}) as in 30s or 7d, got ${shown(text)}`);
    return ms;
  }
  if (spec.kind === 'count' || spec.kind === 'port') {
    if (!/^\d+$/.test(text.trim())) throw new OutboxError('invalid', name, `must be ${expected(name)}, got ${shown(text)}`);
    return Number(text);
  }
  return text;
}

/** Of text that was not understood, enough to recognise it. (Only numbers and durations are parsed: no secret.) */
function shown(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 39)}…` : text);
}

/**
 * The settings given as flags or environment variables (commander's parsed `opts`), as `startWorker`
 * takes them. An empty value is unset. Metrics are served only when a port is given.
 */
export function settingsInput(opts: Readonly<Record<string, unknown>>): SettingsInput {
  const input: Record<string, unknown> = { posthog: {} };
  for (const name of CLI_SETTINGS) {
    const text = opts[settingOption(name).attributeName()];
    if (typeof text !== 'string' || text.trim() === '') continue;
    const [head, key] = name.split('.') as [string, string | undefined];
    const value = parseSetting(name, text);
    if (key === undefined) input[head] = value;
    else input[head] = { ...(input[head] as object | undefined), [key]: value };
  }
  const metrics = input.metrics as { port?: number } | undefined;
  if (metrics?.port === undefined) delete input.metrics;
  return input as unknown as SettingsInput;
}
