/**
 * docs/settings.md, generated from the settings' one declaration (worker/settings/schema.ts; the console's, src/console/settings-schema.ts).
 * `npm run docs:settings` writes it; test/worker/settings-doc.test.ts fails when the committed page differs.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DURATION_UNITS, formatDuration } from '../worker/settings/duration.ts';
import { CONSOLE_SETTINGS, type ConsoleSettingSpec } from '../src/console/settings-schema.ts';
import { defaultText, SETTINGS, type SettingKind, type SettingSpec } from '../worker/settings/schema.ts';

export const SETTINGS_DOC = path.resolve(import.meta.dirname, '../docs/settings.md');

const UNIT: Readonly<Record<SettingKind, string>> = {
  count: 'whole number',
  port: 'TCP port',
  duration: 'duration',
  secret: 'text (secret)',
  url: 'URL',
  name: 'schema name',
  host: 'host name or address',
  cron: 'cron expression',
  choice: 'word',
};

function range(spec: SettingSpec): string {
  if (spec.choices) return spec.choices.map(code).join(', ');
  if (spec.min === undefined || spec.max === undefined) return '';
  const show = spec.kind === 'duration' ? formatDuration : String;
  return `${spec.zero ? '0, or ' : ''}${show(spec.min)} to ${show(spec.max)}`;
}

function cell(text: string | undefined): string {
  return text ? text.replaceAll('|', '\\|') : '';
}

const code = (text: string | undefined) => (text ? `\`${text}\`` : '');

/** The page. */
export function settingsMarkdown(): string {
  const rows = Object.entries(SETTINGS as Record<string, SettingSpec>).map(([name, spec]) => {
    const byDefault = spec.required ? 'required' : spec.defaultText !== undefined ? defaultText(spec) : code(defaultText(spec));
    const what = `${spec.description}${spec.zero ? `; 0: ${spec.zero}` : ''}`;
    return `| ${code(name)} | ${code(spec.flag)} | ${code(spec.env)} | ${UNIT[spec.kind]} | ${range(spec)} | ${cell(byDefault)} | ${cell(what)} |`;
  });
  return [
    '# Worker settings',
    '',
    '<!-- Generated from worker/settings/schema.ts and src/console/settings-schema.ts by `npm run docs:settings`: edit the schemas, not this page. test/worker/settings-doc.test.ts fails when it is out of date. -->',
    '',
    'Every setting of the delivery worker: its name in `startWorker(options)`, the flag and environment variable of',
    '`posthog-outbox worker` (a flag wins over its variable), its unit, range and default. A setting without a flag is an',
    'option of `startWorker` only.',
    '',
    `**Units.** A duration is milliseconds in \`startWorker\`'s options (named \`...Ms\`) and, on the command line and in the`,
    `environment, a whole number with a unit (${DURATION_UNITS}), e.g. \`500ms\`, \`30s\`, \`10m\`, \`36h\`, \`7d\`, or \`0\` alone. A bare`,
    'number is refused: `10000` could be seconds or milliseconds. A count is a whole number.',
    '',
    '**Errors.** A value out of range or that does not parse stops the worker before it starts. `startWorker` throws an',
    '`OutboxError` whose `field` is the setting (`batchSize`); `posthog-outbox worker` prints one line naming the flag and',
    'its variable and exits 2: `posthog-outbox: --batch-size (POSTHOG_OUTBOX_BATCH_SIZE): must be a whole number from 1 to',
    '10000, got 0`.',
    '',
    '| Setting | Flag | Environment variable | Unit | Range | Default | What it does |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    ...consoleSection(),
  ].join('\n');
}

const CONSOLE_UNIT: Readonly<Record<ConsoleSettingSpec['kind'], string>> = {
  host: UNIT.host,
  port: UNIT.port,
  secret: UNIT.secret,
  duration: UNIT.duration,
  path: 'URL path',
  switch: 'flag (no value)',
};

/** The console's settings (src/console/settings-schema.ts): `posthog-outbox console` and `createConsoleHandler`. */
function consoleSection(): string[] {
  const rows = Object.entries(CONSOLE_SETTINGS as Record<string, ConsoleSettingSpec>).map(([name, spec]) => {
    const show = spec.kind === 'duration' ? formatDuration : String;
    const bounds = spec.kind === 'secret' ? `at least ${spec.min} characters` : spec.min === undefined ? '' : `${show(spec.min)} to ${show(spec.max!)}`;
    const byDefault =
      spec.defaultText ?? (spec.default === undefined ? '' : code(spec.kind === 'duration' ? formatDuration(spec.default as number) : String(spec.default)));
    return `| ${code(name)} | ${code(spec.flag)} | ${code(spec.env)} | ${CONSOLE_UNIT[spec.kind]} | ${bounds} | ${cell(byDefault)} | ${cell(spec.description)} |`;
  });
  return [
    '## Console settings',
    '',
    'The operator console ([console.md](console.md)): its name in `createConsoleHandler(options)` / `startConsole(options)` from',
    '`posthog-outbox/console`, the flag and environment variable of `posthog-outbox console`. `host` and `port` are for',
    '`startConsole` and the command; a handler mounted in an application listens where the application does.',
    '',
    '| Setting | Flag | Environment variable | Unit | Range | Default | What it does |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ];
}

if (import.meta.main) {
  writeFileSync(SETTINGS_DOC, settingsMarkdown());
  process.stdout.write(`wrote ${path.relative(process.cwd(), SETTINGS_DOC)}\n`);
}
