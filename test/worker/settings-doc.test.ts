/** docs/settings.md is generated from the settings' declaration: the committed page must be what it gives. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { SETTINGS_DOC, settingsMarkdown } from '../../dev/settings-doc.ts';
import { SETTINGS } from '../../worker/settings/schema.ts';

it('docs/settings.md is up to date with worker/settings/schema.ts (run `npm run docs:settings`)', () => {
  expect(readFileSync(SETTINGS_DOC, 'utf8')).toBe(settingsMarkdown());
});

it('lists every setting, one row each, with its flag and variable', () => {
  const page = settingsMarkdown();
  for (const [name, spec] of Object.entries(SETTINGS)) {
    const row = page.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    expect(row, name).toBeDefined();
    if ('flag' in spec) expect(row).toContain(`\`${spec.flag}\` | \`${spec.env}\``);
  }
});
