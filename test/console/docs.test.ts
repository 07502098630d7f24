/**
 * docs/console.md's example (```ts console), run as written: the console mounted under an application's admin
 * route, behind the application's own check, the rest of the application untouched.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ConsoleHandler } from '../../src/console/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { docBlock } from '../support/docs.ts';
import { createWorkerDatabase } from '../support/worker.ts';

/** The application's own pieces the example takes for granted. */
const PRELUDE = `
import type { IncomingMessage, ServerResponse } from 'node:http';
const app = (_req: IncomingMessage, res: ServerResponse) => void res.writeHead(200).end('the application');
const isAdmin = (req: IncomingMessage) => req.headers['x-admin'] === 'yes';
`;

let db: TestDatabase;
const env = { ...process.env };
beforeAll(async () => {
  db = await createWorkerDatabase();
  process.env.DATABASE_URL = db.url;
});
afterAll(async () => {
  process.env = env;
  await db?.drop();
});

it('the mounting example serves the console under /admin/outbox, behind the application’s check', async () => {
  const root = path.resolve(import.meta.dirname, '../..');
  const dir = path.join(root, '.data', 'docs-examples');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `console-${process.pid}-${Date.now()}.ts`);
  const entry = pathToFileURL(path.join(root, 'src', 'console', 'index.ts')).href;
  // The example's port, 3000, could be taken on a shared machine: any free port instead.
  const block = docBlock('docs/console.md', 'ts console').replace('server.listen(3000)', 'server.listen(0)');
  writeFileSync(file, `${PRELUDE}\n${block.replaceAll("from 'posthog-outbox/console'", `from '${entry}'`)}\nexport { server, outboxConsole };\n`);
  const listeners = process.listeners('SIGTERM');
  const { server, outboxConsole } = (await import(pathToFileURL(file).href)) as { server: Server; outboxConsole: ConsoleHandler };
  rmSync(file, { force: true });
  try {
    if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await (await fetch(`${url}/`)).text()).toBe('the application');
    expect((await fetch(`${url}/admin/outbox/`)).status).toBe(403);
    const page = await fetch(`${url}/admin/outbox/`, { headers: { 'x-admin': 'yes' } });
    expect(await page.text()).toContain('<script type="module" src="/admin/outbox/console.js">');
    const overview = await (await fetch(`${url}/admin/outbox/api/overview`, { headers: { 'x-admin': 'yes' } })).json();
    expect(overview).toMatchObject({ actions: true, status: { backlog: 0, deadLetters: 0 } });
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await outboxConsole.close();
    for (const listener of process.listeners('SIGTERM')) if (!listeners.includes(listener)) process.off('SIGTERM', listener);
  }
});
