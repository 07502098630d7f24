/**
 * The console's page in a real browser (Debian's chromium), read only: on an outbox seeded as an outage leaves it,
 * every figure it shows is what `status --json` and `dead-letters list --json` print; it loads nothing from
 * anywhere but the console; nothing a dead letter carries is rendered as HTML; and without --allow-actions it
 * offers no action and its own script's attempt at one is refused.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ConsoleServer, startConsole } from '../../src/console/index.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { runCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, OUTBOX_TABLES } from '../support/worker.ts';
import { browserHooks, runBrowserTests } from './browser.ts';
import { killEvents, seedOutbox } from './seed.ts';

describe.runIf(runBrowserTests())('the console page (read only)', () => {
  const browser = browserHooks();
  let db: TestDatabase;
  let server: ConsoleServer;
  const quiet = { info() {}, warn() {}, error() {} };
  beforeAll(async () => {
    db = await createWorkerDatabase();
    server = await startConsole({ databaseUrl: db.url, port: 0, refreshMs: 1_000, logger: quiet });
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.sql.unsafe(`TRUNCATE ${OUTBOX_TABLES}`);
  });

  /** A page on the console, once it has shown the figures; `problems` collects script errors, CSP reports and requests elsewhere. */
  async function openPage(): Promise<{ page: Page; problems: string[] }> {
    const page = await browser().newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('request', (request) => {
      if (!request.url().startsWith(server.url)) problems.push(`request elsewhere: ${request.url()}`);
    });
    await page.goto(server.url);
    await page.waitForFunction(() => (globalThis as any).document.getElementById('updated')?.textContent?.startsWith('updated'));
    return { page, problems };
  }

  const text = async (page: Page, selector: string) => (await page.locator(selector).textContent()) ?? '';
  const number = async (page: Page, selector: string) => Number((await text(page, selector)).replaceAll(',', ''));
  const column = (page: Page, table: string, n: number) =>
    page.locator(`#${table} tbody tr`).evaluateAll((rows, i) => rows.map((r) => (r as any).cells[i]?.textContent ?? ''), n);

  it('shows what `status --json` and `dead-letters list --json` print, and loads nothing from elsewhere', async () => {
    const seeded = await seedOutbox(db.sql);
    const status = JSON.parse((await runCli(['status', '--json'], { env: { DATABASE_URL: db.url } })).stdout);
    const listed = (await runCli(['dead-letters', 'list', '--json'], { env: { DATABASE_URL: db.url } })).stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const { page, problems } = await openPage();
    try {
      // (another test's figures may be shown for up to a second: the console reads them once a second at most)
      await expect.poll(() => number(page, '[data-figure=backlog]')).toBe(status.backlog);
      expect(await number(page, '[data-figure=due]')).toBe(status.due);
      expect(await number(page, '[data-figure=retrying]')).toBe(status.retrying);
      expect(await number(page, '[data-figure=dead-letters]')).toBe(status.deadLetters);
      expect(await number(page, '[data-figure=reasons]')).toBe(status.deadLettersByReason.length);
      expect(await number(page, '[data-figure=profiles]')).toBe(status.profiles.known);
      expect(await text(page, '[data-figure=oldest]')).toMatch(/^2h 0m$/);
      expect(await text(page, '#target-badge')).toBe('PostHog FAILING');
      expect(await text(page, '#target')).toContain(status.target.reason);
      expect(await text(page, '#target')).toContain(`since ${status.target.failingSince.slice(0, 19).replace('T', ' ')} UTC (12m`);

      const reasons = status.deadLettersByReason as { reason: string; count: number }[];
      expect((await column(page, 'reasons-table', 0)).map(Number)).toEqual(reasons.map((r) => r.count));
      expect(await column(page, 'reasons-table', 2)).toEqual(reasons.map((r) => r.reason));
      expect(await column(page, 'retrying-table', 0)).toEqual(status.retryingRows.map((r: { uuid: string }) => r.uuid));
      expect((await column(page, 'backlog-table', 1)).reduce((n, q) => n + Number(q), 0)).toBe(status.backlog);
      expect((await column(page, 'profiles-table', 1)).reduce((n, k) => n + Number(k), 0)).toBe(status.profiles.known);
      expect(await column(page, 'dl-table', 1)).toEqual(listed.map((d) => d.uuid));
      expect(await column(page, 'dl-table', 2)).toEqual(listed.map((d) => d.event));
      expect(await text(page, '#dl-count')).toBe(`${listed.length} shown of ${listed.length} matching, newest first`);
      expect(listed.map((d) => d.uuid).sort()).toEqual([...seeded.dead].sort());

      // filtered by reason from its table, then by event
      await page.locator('#reasons-table tbody tr', { hasText: 'max-age' }).getByRole('button', { name: 'filter' }).click();
      await expect.poll(() => column(page, 'dl-table', 1)).toEqual(listed.filter((d) => d.reason.includes('max-age')).map((d) => d.uuid));
      await page.locator('#dl-filter [name=reason]').fill('');
      await page.locator('#dl-filter [name=event]').fill('file_uploaded');
      await page.locator('#dl-filter').getByRole('button', { name: 'Filter' }).click();
      await expect.poll(() => column(page, 'dl-table', 2)).toEqual(['file_uploaded', 'file_uploaded']);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('renders nothing a dead letter carries as HTML: script and img payloads in its event, properties, distinct id and reason show as text', async () => {
    const payloads = ['<script>window.__pwned = "script"</script>', '<img src=x onerror="window.__pwned = \'img\'">'];
    const [uuid] = await record(
      db.sql,
      attributedEvent({ organization: { id: 'org_1' }, user: { id: 'user_1' } }, 'hostile', { note: payloads[0], html: payloads[1], [payloads[1]!]: 1 }),
    );
    await db.sql`UPDATE posthog_outbox.outbox SET distinct_id = ${payloads[1]!}, event = ${payloads[0]!} WHERE uuid = ${uuid!}`;
    await killEvents(db.sql, [uuid!], `PostHog rejected ${payloads[1]} because ${payloads[0]}`);
    await db.sql`INSERT INTO posthog_outbox.target_health (id, failing_since, reason) VALUES (1, now(), ${payloads.join(' ')})`;
    const { page, problems } = await openPage();
    try {
      await page.locator('#dl-table tbody button.link').first().click();
      await page.locator('#dl-json').waitFor();
      const json = await text(page, '#dl-json');
      for (const payload of payloads) expect(json).toContain(JSON.stringify(payload).slice(1, -1));
      expect(await text(page, '#dl-detail-title')).toContain(payloads[0]);
      await expect.poll(() => text(page, '#reasons-table')).toContain(`PostHog rejected ${payloads[1]} because ${payloads[0]}`);
      expect(await text(page, '#dl-table')).toContain(payloads[0]);
      expect(await text(page, '#target')).toContain(payloads[1]);
      // (the page's own types: no DOM library in this project's compiler settings)
      const rendered = await page.evaluate(() => {
        const { document, __pwned } = globalThis as any;
        return {
          pwned: __pwned ?? null,
          images: document.querySelectorAll('img').length,
          scripts: [...document.querySelectorAll('script')].map((s: any) => s.getAttribute('src')),
        };
      });
      expect(rendered).toEqual({ pwned: null, images: 0, scripts: ['/console.js'] });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('without --allow-actions it offers no action, and an action from its own script is refused and changes nothing', async () => {
    const [uuid] = await record(db.sql, attributedEvent({ organization: { id: 'org_1' }, user: { id: 'user_1' } }, 'stuck'));
    await killEvents(db.sql, [uuid!], 'refused');
    const { page } = await openPage();
    try {
      await page.locator('#dl-table tbody tr[data-uuid]').waitFor();
      expect(await page.locator('#dl-replay, #dl-discard, #forget-form, #dl-table input[type=checkbox]').count()).toBe(0);
      const answer = await page.evaluate(async (id) => {
        const response = await fetch('/api/dead-letters/replay', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-posthog-outbox-csrf': (globalThis as any).document.body.dataset.csrf },
          body: JSON.stringify({ ids: [id] }),
        });
        return { status: response.status, body: await response.json() };
      }, uuid!);
      expect(answer).toEqual({ status: 403, body: { error: 'actions are turned off: this console runs read only (its allowActions setting)' } });
      expect(await db.sql`SELECT uuid FROM posthog_outbox.dead_letters`).toEqual([{ uuid }]);
    } finally {
      await page.close();
    }
  });
});
