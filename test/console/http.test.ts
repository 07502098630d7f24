/**
 * The console at the HTTP level, against real PostgreSQL: its figures are those of `status --json` and
 * `dead-letters list --json`; every response carries the security headers; a token guards every request; actions
 * are refused without `allowActions`, without the page's CSRF secret, from another origin or not as JSON; a
 * loopback console answers only to loopback names; beyond loopback it needs a token; a base path; the command.
 */
import { spawn } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCaptureServer } from '../../dev/capture-server.ts';
import { type ConsoleServer, createConsoleHandler, startConsole } from '../../src/console/index.ts';
import { OutboxError } from '../../src/errors/errors.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { startWorker } from '../../worker/index.ts';
import { CLI, runCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, OUTBOX_TABLES, outboxEmpty, until } from '../support/worker.ts';
import { killEvents, seedOutbox, stale } from './seed.ts';

let db: TestDatabase;
const consoles: ConsoleServer[] = [];
const logged: { level: string; object: Record<string, unknown>; message?: string }[] = [];
const logger = Object.fromEntries(
  ['info', 'warn', 'error'].map((level) => [level, (object: Record<string, unknown>, message?: string) => logged.push({ level, object, message })]),
) as unknown as { info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void };

beforeAll(async () => {
  db = await createWorkerDatabase();
});
afterAll(async () => db?.drop());
beforeEach(async () => {
  logged.length = 0;
  await db.sql.unsafe(`TRUNCATE ${OUTBOX_TABLES}`);
});
afterEach(async () => {
  await Promise.all(consoles.splice(0).map((c) => c.close()));
});

async function open(options: Parameters<typeof startConsole>[0] = {}): Promise<ConsoleServer> {
  const server = await startConsole({ databaseUrl: db.url, port: 0, logger, ...options });
  consoles.push(server);
  return server;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any;
}

/** A request with whatever headers a test sets (fetch would not send a Host or Origin of its own choosing). */
function raw(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The page's CSRF secret, as its script reads it. */
async function csrfOf(url: string, headers: Record<string, string> = {}): Promise<string> {
  return /data-csrf="([^"]+)"/.exec((await raw(url, { headers })).body)![1]!;
}

/** An action as the page sends it (same origin, its secret, JSON); `change` alters it. */
async function act(server: ConsoleServer, path: string, body: unknown, change: Record<string, string | undefined> = {}): Promise<Answer> {
  const origin = new URL(server.url).origin;
  const headers: Record<string, string | undefined> = {
    'content-type': 'application/json',
    origin,
    'sec-fetch-site': 'same-origin',
    'x-posthog-outbox-csrf': await csrfOf(server.url),
    ...change,
  };
  return raw(`${server.url}${path}`, {
    method: 'POST',
    headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>,
    body: JSON.stringify(body),
  });
}

const deadLetterCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.dead_letters`)[0]!.n;

describe('what the console serves', () => {
  it('its figures are those `status --json` and `dead-letters list --json` print for the same database', async () => {
    await seedOutbox(db.sql);
    const server = await open();
    const overview = (await raw(`${server.url}api/overview`)).json();
    const status = JSON.parse((await runCli(['status', '--json'], { env: { DATABASE_URL: db.url } })).stdout);
    expect(overview.status).toEqual({ ...status, oldestAgeMs: expect.any(Number) });
    expect(Math.abs(overview.status.oldestAgeMs - status.oldestAgeMs)).toBeLessThan(10_000);
    expect(overview.backlogByEvent.events.reduce((n: number, e: { queued: number }) => n + e.queued, 0)).toBe(status.backlog);
    expect(overview.profiles.reduce((n: number, p: { known: number }) => n + p.known, 0)).toBe(status.profiles.known);
    const listed = (await runCli(['dead-letters', 'list', '--json'], { env: { DATABASE_URL: db.url } })).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const found = (await raw(`${server.url}api/dead-letters`)).json();
    expect(found).toEqual({ deadLetters: listed, matched: listed.length });
  });

  it('every response carries the security headers; the page runs no inline script and loads nothing from elsewhere', async () => {
    const server = await open();
    for (const path of ['', 'console.js', 'parts.css', 'api/overview', 'nope', 'api/nope']) {
      const answer = await raw(`${server.url}${path}`);
      expect(answer.status, path).toBe(path.includes('nope') ? 404 : 200);
      expect(answer.headers['content-security-policy']).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      );
      expect(answer.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
      });
    }
    const page = (await raw(server.url)).body;
    expect([...page.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual(['<script type="module" src="/console.js">']);
    expect(page).not.toMatch(/\bon[a-z]+=|https?:\/\//);
    expect((await raw(`${server.url}console.js`)).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await raw(server.url, { method: 'DELETE' })).status).toBe(405);
  });

  it('the delivery history: what a real worker delivers and dead-letters shows in the current minute', async () => {
    // A database of its own: sessions that wrote to the shared one flush their statistics up to ~10 s later.
    const db = await createWorkerDatabase();
    const capture = await startCaptureServer({ apiKey: 'phc_console_http' });
    const server = await open({ databaseUrl: db.url, sampleIntervalMs: 1_000 });
    const context = { organization: { id: 'o1' }, user: { id: 'u1' } };
    await record(
      db.sql,
      [...Array(9).fill('good'), 'stale'].map((name) => attributedEvent(context, name)),
    );
    await stale(db.sql);
    const worker = await startWorker({
      databaseUrl: db.url,
      posthog: { apiKey: 'phc_console_http', host: capture.url },
      logger: { info() {}, warn() {}, error() {} },
    });
    try {
      await outboxEmpty(db.sql);
      const sum = (minutes: { delivered: number | null; deadLettered: number | null }[], key: 'delivered' | 'deadLettered') =>
        minutes.reduce((n, m) => n + (m[key] ?? 0), 0);
      const delivery = await until(
        async () => (await raw(`${server.url}api/overview`)).json().delivery,
        (d) => sum(d.minutes, 'deadLettered') >= 1 && sum(d.minutes, 'delivered') >= 9,
        { what: 'the sampled history to show the delivery', timeoutMs: 25_000 },
      );
      expect(delivery.minutes).toHaveLength(60);
      expect(sum(delivery.minutes, 'deadLettered')).toBe(1);
      // the 9 events (their user and organization carry no profile to identify), and the stale one dead-lettered
      expect(sum(delivery.minutes, 'delivered')).toBe(9);
      expect(delivery.since).not.toBeNull();
      expect(delivery.minutes[0].delivered).toBeNull(); // before the console started: not known
    } finally {
      await worker.stop(5_000);
      await capture.close();
      await Promise.all(consoles.splice(0).map((c) => c.close()));
      await db.drop();
    }
  });
});

describe('who may use it', () => {
  const TOKEN = 'a-token-of-24-characters';

  it('with a token, every request without it is 401, whatever it asks; HTTP Basic (any user) or Bearer with it pass', async () => {
    const server = await open({ token: TOKEN, allowActions: true });
    for (const [method, path] of [
      ['GET', ''],
      ['GET', 'console.js'],
      ['GET', 'api/overview'],
      ['POST', 'api/forget'],
    ] as const) {
      const answer = await raw(`${server.url}${path}`, { method });
      expect(answer.status, path).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Basic realm="posthog-outbox console", charset="UTF-8"');
      expect((await raw(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    }
    expect((await raw(`${server.url}api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const basic = `Basic ${Buffer.from(`anyone:${TOKEN}`).toString('base64')}`;
    expect((await raw(server.url, { headers: { authorization: basic } })).status).toBe(200);
    // an action: the token and the page's secret
    const [uuid] = await record(db.sql, attributedEvent({ organization: { id: 'o' }, user: { id: 'u' } }, 'x'));
    await killEvents(db.sql, [uuid!], 'r');
    const csrf = await csrfOf(server.url, { authorization: basic });
    const post = (headers: Record<string, string>) =>
      raw(`${server.url}api/dead-letters/discard`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-posthog-outbox-csrf': csrf, ...headers },
        body: JSON.stringify({ ids: [uuid] }),
      });
    expect((await post({})).status).toBe(401);
    expect(await deadLetterCount()).toBe(1);
    expect((await post({ authorization: basic })).json()).toEqual({ deleted: 1, asked: 1 });
  });

  it('actions are refused (403, logged, nothing changed) without allowActions, and as possible cross-site requests', async () => {
    const [uuid] = await record(db.sql, attributedEvent({ organization: { id: 'o' }, user: { id: 'u' } }, 'x'));
    await killEvents(db.sql, [uuid!], 'r');
    const readOnly = await open();
    const off = await act(readOnly, 'api/dead-letters/discard', { ids: [uuid] });
    expect(off.status).toBe(403);
    expect(off.json().error).toMatch(/actions are turned off: this console runs read only \(its allowActions setting\)/);

    const server = await open({ allowActions: true });
    const refusals: [Record<string, string | undefined>, RegExp][] = [
      [{ 'x-posthog-outbox-csrf': undefined }, /no valid x-posthog-outbox-csrf header/],
      [{ 'x-posthog-outbox-csrf': 'guessed' }, /no valid x-posthog-outbox-csrf header/],
      [{ origin: 'http://evil.example' }, /another origin \(evil\.example\)/],
      [{ origin: 'null' }, /opaque origin/],
      [{ 'sec-fetch-site': 'cross-site' }, /a cross-site request/],
      [{ 'sec-fetch-site': 'same-site' }, /a same-site request/],
      [{ 'content-type': 'text/plain' }, /not a JSON request/],
    ];
    for (const [change, why] of refusals) {
      const answer = await act(server, 'api/dead-letters/discard', { ids: [uuid] }, change);
      expect(answer.status, JSON.stringify(change)).toBe(403);
      expect(answer.json().error).toMatch(why);
    }
    expect(await deadLetterCount()).toBe(1);
    expect(logged.filter((l) => l.message === 'console action refused')).toHaveLength(refusals.length + 1);
    // a cross-site page cannot read the figures either
    expect((await raw(`${server.url}api/overview`, { headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);

    expect((await act(server, 'api/dead-letters/discard', { ids: [uuid] })).json()).toEqual({ deleted: 1, asked: 1 });
    expect(logged.find((l) => l.message === 'console discard')?.object).toMatchObject({ action: 'discard', ids: [uuid], deleted: 1 });
    expect((await act(server, 'api/dead-letters/discard', { ids: 'all' })).status).toBe(400);
    expect((await act(server, 'api/nope', {})).status).toBe(404);
    const huge = await act(server, 'api/dead-letters/replay', { ids: ['x'.repeat(70_000)] });
    expect(huge.status).toBe(413);
  });

  it('a loopback console answers only to loopback host names: a DNS-rebinding page names its own', async () => {
    const server = await open();
    const port = new URL(server.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`])
      expect((await raw(server.url, { headers: { host } })).status, host).toBe(200);
    const rebound = await raw(`${server.url}api/overview`, { headers: { host: `attacker.example:${port}` } });
    expect(rebound.status).toBe(421);
  });

  it('beyond loopback, it refuses to start without a token (nothing listens), and starts with one', async () => {
    const error = await startConsole({ databaseUrl: db.url, host: '0.0.0.0', port: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as OutboxError).field).toBe('token');
    const cli = await runCli(['console', '--host', '0.0.0.0', '--port', '0'], { env: { DATABASE_URL: db.url } });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^posthog-outbox: --token \(POSTHOG_OUTBOX_CONSOLE_TOKEN\): the console would listen on 0\.0\.0\.0, beyond this machine/);
    const short = await runCli(['console', '--port', '0'], { env: { DATABASE_URL: db.url, POSTHOG_OUTBOX_CONSOLE_TOKEN: 'short' } });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('--token (POSTHOG_OUTBOX_CONSOLE_TOKEN): must be at least 16 characters');
    const wide = await open({ host: '0.0.0.0', token: 'a-token-of-24-characters' });
    expect((await raw(`http://127.0.0.1:${wide.port}/`)).status).toBe(401);
  });
});

describe('where it is served', () => {
  let app: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (app ? app.close(resolve) : resolve(undefined)));
    app = undefined;
  });

  async function serve(handle: (req: any, res: any) => void): Promise<string> {
    app = createServer(handle);
    await new Promise<void>((resolve) => app!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  }

  it('under an application’s base path: mounted as is, or by a router that strips the prefix (Express)', async () => {
    const handler = createConsoleHandler({ sql: db.sql, basePath: '/admin/outbox/', logger });
    try {
      const url = await serve((req, res) => (req.url.startsWith('/admin/') ? handler(req, res) : res.writeHead(200).end('the application')));
      const bare = await raw(`${url}/admin/outbox?x=1`);
      expect(bare.status).toBe(308);
      expect(bare.headers.location).toBe('/admin/outbox/?x=1');
      const page = await raw(`${url}/admin/outbox/`);
      expect(page.body).toContain('<script type="module" src="/admin/outbox/console.js">');
      expect(page.body).toContain('data-base="/admin/outbox"');
      expect((await raw(`${url}/admin/outbox/console.js`)).status).toBe(200);
      expect((await raw(`${url}/admin/outbox/api/overview`)).json().status.backlog).toBe(0);
      expect((await raw(`${url}/admin/other`)).status).toBe(404);
      await new Promise((resolve) => app!.close(resolve));

      const routed = await serve((req, res) => {
        if (!req.url.startsWith('/admin/outbox')) return res.writeHead(404).end();
        req.originalUrl = req.url;
        req.url = req.url.slice('/admin/outbox'.length) || '/';
        handler(req, res);
      });
      expect((await raw(`${routed}/admin/outbox`)).body).toContain('src="/admin/outbox/console.js"');
      expect((await raw(`${routed}/admin/outbox/parts.css`)).headers['content-type']).toBe('text/css; charset=utf-8');
    } finally {
      await handler.close();
    }
    expect(await db.sql`SELECT 1 AS one`).toEqual([{ one: 1 }]); // the application's client is left open
  });

  it('`posthog-outbox console` serves until SIGTERM (exit 0) and logs its URL and each action', async () => {
    const [uuid] = await record(db.sql, attributedEvent({ organization: { id: 'o' }, user: { id: 'u' } }, 'x'));
    await killEvents(db.sql, [uuid!], 'r');
    const child = spawn(process.execPath, [CLI, 'console', '--port', '0', '--allow-actions'], {
      env: { ...process.env, DATABASE_URL: db.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const line = await until(
        () => out.split('\n').find((l) => l.includes('console listening')),
        (l) => l !== undefined,
        { what: 'the console to listen' },
      );
      const { url, actions } = JSON.parse(line!);
      expect(actions).toBe(true);
      expect((await act({ url, port: 0, close: async () => {} }, 'api/dead-letters/replay', { ids: [uuid] })).json()).toEqual({ moved: 1 });
      await until(
        () => out,
        (o) => o.includes('"msg":"console replay"'),
        { what: 'the action’s log line' },
      );
      expect(JSON.parse(out.split('\n').find((l) => l.includes('console replay'))!)).toMatchObject({ action: 'replay', ids: [uuid], moved: 1 });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
