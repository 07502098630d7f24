// A chat handler's flow against a real PostgreSQL: the run tracker's events land in the outbox with the
// handler's own rows, or not at all.
import { eq } from 'drizzle-orm';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { outbox, record, startRun, type RunContext } from '../../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { queuedEvents } from '../support/queued.ts';

const messages = pgTable('messages', { id: serial('id').primaryKey(), body: text('body').notNull() });
const automationRun: RunContext = {
  organization: { id: 'org_1', name: 'Acme' },
  user: { id: 'owner_1' },
  automation: { id: 'auto_1', name: 'Digest', triggerId: 'trg_1' },
  threadId: 'thread_1',
};
const personRun: RunContext = { organization: { id: 'org_1' }, user: { id: 'user_1', email: 'ada@example.com' }, threadId: 'thread_2' };

let db: TestDatabase;
let client: postgres.Sql;
let orm: ReturnType<typeof drizzle>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql`CREATE TABLE messages (id serial PRIMARY KEY, body text NOT NULL)`;
  client = postgres(db.url, { max: 4, onnotice: () => {} });
  orm = drizzle(client);
});
afterAll(async () => {
  await client?.end();
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
});

describe('a handler records its run in its own transaction', () => {
  it('started, tool call and completion commit with the message; columns carry who was touched', async () => {
    const run = startRun(automationRun, { agentId: 'agent_1', mode: 'chat' });
    await orm.transaction(async (tx) => {
      await tx.insert(messages).values({ body: 'hello' });
      run.modelCall({ modelId: 'm', inputTokens: 10, outputTokens: 5 });
      await record(tx, [
        run.started,
        run.toolCalled({ toolName: 'search', source: 'mcp', latencyMs: 12, result: { isError: false } }),
        run.complete({ finishReason: 'stop' }),
      ]);
    });
    const rows = await queuedEvents(db.sql);
    expect(rows.map((r) => r.event)).toEqual(['chat_message_started', 'tool_called', 'chat_message_completed']);
    for (const row of rows) {
      expect(row).toMatchObject({
        distinctId: 'automation_auto_1',
        userId: 'owner_1',
        automationId: 'auto_1',
        organizationId: 'org_1',
        groups: { organization: 'org_1' },
      });
      expect(row.userProfile).toEqual({});
      expect(row.organizationProfile).toEqual({ name: 'Acme' });
      expect(row.automationProfile).toMatchObject({ name: 'Digest', is_automation: true, owner_user_id: 'owner_1' });
    }
    expect(rows[2]!.properties).toMatchObject({ total_tokens: 15, user_id: 'owner_1', trigger_id: 'trg_1' });
    expect(await orm.select().from(messages)).toHaveLength(1);
  });

  it('a person cancelling their own run writes no event, only their rows', async () => {
    const run = startRun(personRun);
    await orm.transaction(async (tx) => {
      await tx.insert(messages).values({ body: 'partial answer' });
      expect(await record(tx, run.abort('cancelled'))).toEqual([]);
    });
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 0 }]);
    expect(await orm.select().from(messages)).toHaveLength(1);
  });

  it('a failure recorded in a transaction that then rolls back leaves neither the row nor the event', async () => {
    const run = startRun(personRun);
    await expect(
      db.sql.begin(async (tx) => {
        await tx`INSERT INTO messages (body) VALUES ('x')`;
        await record(tx, run.fail(new Error('provider exploded')));
        throw new Error('handler crashed after recording');
      }),
    ).rejects.toThrow('handler crashed after recording');
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 0 }]);
    expect(await db.sql`SELECT count(*)::int AS n FROM messages`).toEqual([{ n: 0 }]);
  });

  it('the stored event is exactly what the builder made: uuid v7, timestamp of the end, error fields', async () => {
    let t = Date.parse('2026-11-20T10:00:00.000Z');
    const run = startRun(personRun, { mode: 'chat' }, { now: () => t });
    t += 2500;
    const failed = run.fail(new Error('Bearer abc.def.ghi rejected: 401'));
    const [uuid] = await record(db.sql, failed);
    const row = (await queuedEvents(db.sql)).find((e) => e.uuid === uuid);
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(row!.timestamp!.toISOString()).toBe('2026-11-20T10:00:02.500Z');
    expect(row!.properties).toMatchObject({ duration_ms: 2500, error_category: 'auth', error_message: 'Bearer [redacted] rejected: 401' });
  });
});
