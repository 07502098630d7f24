/**
 * The docs as tests: the README's handler example (```ts handler) and its `startWorker` example (```ts worker)
 * run as written against a real database and the capture endpoint, with only the application's own values
 * (its tables, the organization, the user, the request) declared ahead of them; and every relative link in
 * README.md, CHANGELOG.md and docs/*.md leads to a file that exists, and to a heading of it when it names one.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../dev/capture-server.ts';
import type { OutboxWorker } from '../worker/index.ts';
import type { TestDatabase } from './support/db.ts';
import { docBlock, readDoc, ROOT } from './support/docs.ts';
import { createWorkerDatabase, outboxEmpty } from './support/worker.ts';

const root = fileURLToPath(ROOT);

/** The application's values the README's examples take for granted. */
const HANDLER_PRELUDE = `
import { pgTable as docsPgTable, text as docsText } from 'drizzle-orm/pg-core';
const messages = docsPgTable('messages', { id: docsText('id').primaryKey(), body: docsText('body') });
const toolResults = docsPgTable('tool_results', { id: docsText('id').primaryKey(), body: docsText('body') });
const org = { id: 'org_docs', name: 'Docs Inc', slug: 'docs' };
const user = { id: 'user_docs', email: 'ada@example.com', name: 'Ada' };
const automation: { id: string; name: string } | null = null;
const triggerId = null;
const virtualMcp = { name: 'support-tools' };
const thread = { id: 'thread_docs' };
const request = { headers: { 'x-client-name': 'docs-client/1.0' } };
const agent = { id: 'agent_docs' };
const credentialId = 'credential_docs';
const tool = { annotations: { readOnlyHint: true } };
const userMessage = { id: 'message_user', body: 'hello' };
const result = { id: 'result_docs', body: 'found it' };
const assistantMessage = { id: 'message_assistant', body: 'here you are' };
`;

/** Writes `code` as a module under .data/ (so its imports resolve from the project) and imports it. */
async function runModule(name: string, code: string): Promise<Record<string, unknown>> {
  const dir = path.join(root, '.data', 'docs-examples');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${process.pid}-${Date.now()}.ts`);
  const entry = pathToFileURL(path.join(root, 'src', 'index.ts')).href;
  const worker = pathToFileURL(path.join(root, 'worker', 'index.ts')).href;
  writeFileSync(file, code.replaceAll("from 'posthog-outbox/worker'", `from '${worker}'`).replaceAll("from 'posthog-outbox'", `from '${entry}'`));
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } finally {
    rmSync(file, { force: true });
  }
}

describe('the README examples, run as written', () => {
  let db: TestDatabase;
  let capture: CaptureServer;
  const env = { ...process.env };
  beforeAll(async () => {
    db = await createWorkerDatabase();
    capture = await startCaptureServer({ apiKey: 'phc_docs' });
    await db.sql`CREATE TABLE messages (id text PRIMARY KEY, body text)`;
    await db.sql`CREATE TABLE tool_results (id text PRIMARY KEY, body text)`;
    process.env.DATABASE_URL = db.url;
  });
  afterAll(async () => {
    process.env = env;
    await capture?.close();
    await db?.drop();
  });

  it('the handler example records its three events in the handler transactions', async () => {
    await runModule('readme-handler', `${HANDLER_PRELUDE}\n${docBlock('README.md', 'ts handler')}\nawait db.$client.end();\n`);
    expect((await db.sql`SELECT id FROM messages ORDER BY id`).map((r) => r.id)).toEqual(['message_assistant', 'message_user']);
    expect(await db.sql`SELECT id FROM tool_results`).toHaveLength(1);
    const rows = await db.sql<{ event: string; distinct_id: string; properties: Record<string, unknown> }[]>`
      SELECT event, distinct_id, properties FROM posthog_outbox.outbox ORDER BY uuid`;
    expect(rows.map((r) => r.event)).toEqual(['chat_message_started', 'tool_called', 'chat_message_completed']);
    for (const row of rows) {
      expect(row.distinct_id).toBe('user_docs');
      expect(row.properties).toMatchObject({
        organization_id: 'org_docs',
        thread_id: 'thread_docs',
        user_agent: 'docs-client/1.0',
        virtual_mcp_name: 'support-tools',
      });
    }
  });

  it('the startWorker example delivers them, and re-identifies the user and the organization', async () => {
    const listeners = process.listeners('SIGTERM');
    // The example's port, 9464, could be taken on a shared machine: any free port instead.
    const block = docBlock('README.md', 'ts worker').replace('port: 9464', 'port: 0');
    const { worker } = (await runModule(
      'readme-worker',
      `const databaseUrl = process.env.DATABASE_URL!;\nconst apiKey = 'phc_docs';\nconst host = '${capture.url}';\n${block}\nexport { worker };\n`,
    )) as { worker: OutboxWorker };
    try {
      await outboxEmpty(db.sql, { what: 'the outbox to drain' });
      await capture.waitFor(5, { timeoutMs: 10_000 });
      expect(capture.events.map((e) => e.event).sort()).toEqual([
        '$groupidentify',
        '$identify',
        'chat_message_completed',
        'chat_message_started',
        'tool_called',
      ]);
      expect((await fetch(`${worker.healthUrl}/healthz`)).status).toBe(200);
    } finally {
      await worker.stop(5_000);
      for (const listener of process.listeners('SIGTERM')) if (!listeners.includes(listener)) process.off('SIGTERM', listener);
    }
  });
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a Markdown page: its headings' slugs (numbered as GitHub numbers repeats). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = !fenced && /^#{1,6}\s+(.*)$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative links of a Markdown page (outside code blocks and code spans): [text](target). */
function links(text: string): string[] {
  const prose = text.replace(/^```[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/**
 * Pages another change generates (the settings table, from the settings schema): a link to one is checked once
 * the page exists.
 */
const GENERATED = new Set(['docs/settings.md']);

const PAGES = [
  'README.md',
  'CHANGELOG.md',
  ...readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

describe('links between the pages', () => {
  it.each(PAGES)('every relative link of %s resolves', (page) => {
    const broken: string[] = [];
    for (const link of links(readDoc(page))) {
      const [target = '', anchor] = link.split('#');
      const file = target === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), target));
      if (!existsSync(path.join(root, file))) {
        if (!GENERATED.has(file)) broken.push(`${link}: no file ${file}`);
        continue;
      }
      if (anchor !== undefined && file.endsWith('.md') && !anchors(readDoc(file)).has(anchor)) broken.push(`${link}: no heading #${anchor} in ${file}`);
    }
    expect(broken).toEqual([]);
  });
});
