/**
 * The console's actions in a real browser (Debian's chromium), with --allow-actions and a real worker delivering
 * to the capture server: a dead letter replayed from the page reaches PostHog; discard and forget ask first and
 * say how many rows they changed (cancelled, nothing changes); a page of another origin cannot act (a form post,
 * a no-cors fetch: refused and logged, nothing changed); with a token, the page needs it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { type ConsoleServer, startConsole } from '../../src/console/index.ts';
import { attributedEvent, record } from '../../src/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { inProcessWorkers } from '../support/worker.ts';
import { browserHooks, runBrowserTests } from './browser.ts';
import { killEvents } from './seed.ts';

const API_KEY = 'phc_console_actions';

describe.runIf(runBrowserTests())('the console page’s actions', () => {
  const browser = browserHooks();
  let db: TestDatabase;
  let capture: CaptureServer;
  const startWorker = inProcessWorkers(API_KEY, (fixture) => ({ db, capture } = fixture));
  const logged: { object: Record<string, unknown>; message?: string }[] = [];
  const logger = Object.fromEntries(
    ['info', 'warn', 'error'].map((level) => [level, (object: Record<string, unknown>, message?: string) => logged.push({ object, message })]),
  ) as unknown as { info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void };
  let server: ConsoleServer;
  beforeAll(async () => {
    server = await startConsole({ databaseUrl: db.url, port: 0, allowActions: true, refreshMs: 1_000, logger });
  });
  afterAll(async () => server?.close());
  beforeEach(() => {
    logged.length = 0;
  });

  const context = (user: string) => ({ organization: { id: 'org_1', name: 'Acme' }, user: { id: user, email: `${user}@example.com` } });
  async function deadLetters(user: string, names: string[]): Promise<string[]> {
    const uuids: string[] = [];
    for (const name of names) uuids.push(...(await record(db.sql, attributedEvent(context(user), name))));
    await killEvents(db.sql, uuids, 'PostHog answered HTTP 400');
    return uuids;
  }
  const count = async (table: string) => (await db.sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM posthog_outbox.${table}`))[0]!.n;

  async function openPage(url = server.url, page?: Page): Promise<Page> {
    const opened = page ?? (await browser().newPage());
    await opened.goto(url);
    await opened.locator('#dl-count').filter({ hasText: 'matching' }).waitFor();
    return opened;
  }

  /** Ticks the dead letters' rows, clicks `button`, and answers the confirmation; returns what the dialog asked. */
  async function act(page: Page, uuids: string[], button: string, answer: 'Cancel' | 'confirm'): Promise<string> {
    for (const uuid of uuids) await page.locator(`#dl-table tr[data-uuid="${uuid}"] input[type=checkbox]`).check();
    await page.locator(button).click();
    const asked = (await page.locator('#confirm-text').textContent()) ?? '';
    await page.locator(answer === 'Cancel' ? '#confirm-cancel' : '#confirm-ok').click();
    return asked;
  }

  it('a dead letter replayed from the page goes back to the outbox and a real worker delivers it to PostHog', async () => {
    const [uuid, other] = await deadLetters('ann', ['report_exported', 'report_shared']);
    await startWorker();
    const page = await openPage();
    try {
      expect(await act(page, [uuid!], '#dl-replay', 'confirm')).toMatch(/^Replay 1 dead letter\(s\)\? They go back into the outbox/);
      await expect.poll(() => page.locator('#result').textContent()).toBe('Replayed 1 dead letter(s): back in the outbox, due now.');
      await capture.waitFor((events) => events.some((e) => e.uuid === uuid), { timeoutMs: 15_000 });
      expect(capture.events.filter((e) => e.uuid === uuid)).toHaveLength(1);
      expect(await db.sql`SELECT uuid FROM posthog_outbox.dead_letters`).toEqual([{ uuid: other }]);
      await expect.poll(() => page.locator('[data-figure=dead-letters]').textContent()).toBe('1');
      expect(logged.find((l) => l.message === 'console replay')?.object).toMatchObject({ action: 'replay', ids: [uuid], moved: 1 });
    } finally {
      await page.close();
    }
  });

  it('discard and forget ask first and say how many rows they changed; cancelled, nothing changes', async () => {
    const gone = await deadLetters('bob', ['a', 'b', 'c']);
    await deadLetters('cid', ['d']);
    await record(db.sql, [attributedEvent(context('cid'), 'queued'), attributedEvent(context('cid'), 'queued')]);
    await db.sql`INSERT INTO posthog_outbox.identities (kind, entity_id, fields, event_at) VALUES ('user', 'cid', '{}', now())`;
    const page = await openPage();
    try {
      expect(await act(page, gone.slice(0, 2), '#dl-discard', 'Cancel')).toMatch(/^Discard 2 dead letter\(s\)\? They are deleted for good/);
      expect(await count('dead_letters')).toBe(4);
      await act(page, [gone[2]!], '#dl-discard', 'confirm');
      await expect.poll(() => page.locator('#result').textContent()).toBe('Discarded 3 of 3 dead letter(s).');
      expect(await count('dead_letters')).toBe(1);

      await page.locator('#forget-form [name=id]').fill('cid');
      await page.locator('#forget-form').getByRole('button', { name: 'Forget…' }).click();
      expect(await page.locator('#confirm-text').textContent()).toMatch(/^Forget user "cid"\? In one transaction this deletes/);
      await page.locator('#confirm-ok').click();
      await expect
        .poll(() => page.locator('#result').textContent())
        .toBe('Forgot user "cid": deleted 2 queued event(s), 1 dead letter(s) and the remembered profile.');
      expect([await count('outbox'), await count('dead_letters'), await count('identities')]).toEqual([0, 0, 0]);
      expect(logged.map((l) => l.message)).toEqual(['console discard', 'console forget']);
    } finally {
      await page.close();
    }
  });

  describe('another origin', () => {
    let foreign: Server;
    let foreignUrl: string;
    let html = '';
    beforeAll(async () => {
      foreign = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
      await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
      // another site: `localhost`, where the console is at 127.0.0.1
      foreignUrl = `http://localhost:${(foreign.address() as AddressInfo).port}/`;
    });
    afterAll(() => new Promise((resolve) => foreign.close(resolve)));

    it('cannot act: a form post and a no-cors fetch to the console are refused, logged, and change nothing', async () => {
      const [uuid] = await deadLetters('dan', ['x']);
      const target = `${server.url}api/dead-letters/discard`;
      const page = await browser().newPage();
      try {
        html = `<form method="post" enctype="text/plain" action="${target}"><input name='{"ids":["${uuid}"],"x":"' value='"}'></form>
          <script>fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', body: JSON.stringify({ ids: [${JSON.stringify(uuid)}] }) });</script>`;
        await page.goto(foreignUrl);
        await expect.poll(() => logged.filter((l) => l.message === 'console action refused').length).toBe(1);
        await page.evaluate(() => (globalThis as any).document.forms[0].submit());
        await expect.poll(() => logged.filter((l) => l.message === 'console action refused').length).toBe(2);
        expect(logged.map((l) => l.object.refused)).toEqual([expect.stringMatching(/cross-site request/), expect.stringMatching(/cross-site request/)]);
        expect(await count('dead_letters')).toBe(1);
      } finally {
        await page.close();
      }
    });
  });

  it('with a token, the page is refused without it, and loads and acts with it (HTTP Basic)', async () => {
    const token = 'a-console-token-for-tests';
    const guarded = await startConsole({ databaseUrl: db.url, port: 0, allowActions: true, token, logger });
    const [uuid] = await deadLetters('eve', ['x']);
    const anonymous = await browser().newContext();
    const operator = await browser().newContext({ httpCredentials: { username: 'ops', password: token } });
    try {
      // the browser has no credentials to answer the 401 with
      await expect((await anonymous.newPage()).goto(guarded.url)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      expect((await anonymous.request.get(`${guarded.url}api/overview`)).status()).toBe(401);
      const page = await openPage(guarded.url, await operator.newPage());
      await act(page, [uuid!], '#dl-discard', 'confirm');
      await expect.poll(() => page.locator('#result').textContent()).toBe('Discarded 1 of 1 dead letter(s).');
    } finally {
      await anonymous.close();
      await operator.close();
      await guarded.close();
    }
  });
});
