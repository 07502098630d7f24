/**
 * `record()` through a real PgBouncer in transaction pool mode, the way most hosted PostgreSQL is reached:
 * drizzle over postgres.js with `prepare: false`, raw postgres.js with `prepare: false`, and drizzle over
 * node-postgres. Each commits (the event is there with the handler's row) and rolls back (neither is),
 * with more clients than PgBouncer has server connections, so transactions move between backends.
 */
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle } from 'drizzle-orm/postgres-js';
import { sql as dsql } from 'drizzle-orm';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OutboxEvent } from '../../src/record/event.ts';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { queuedEvents } from '../support/queued.ts';
import { runPoolerTests, startPgBouncer, type PgBouncer } from '../support/pgbouncer.ts';

const event = (i: number): OutboxEvent => ({
  event: 'tool_called',
  distinctId: `user_${i}`,
  properties: { seq: i, $groups: { organization: 'org_1' } },
  groups: { organization: 'org_1' },
  profiles: { user: { id: `user_${i}`, fields: { email: `u${i}@example.com` } } },
});

let db: TestDatabase;
let bouncer: PgBouncer;
let url: string;

describe.skipIf(!runPoolerTests())('record() through PgBouncer in transaction mode', () => {
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.sql`CREATE TABLE messages (id serial PRIMARY KEY, body text NOT NULL)`;
    bouncer = await startPgBouncer(db.url, { poolMode: 'transaction', poolSize: 2 });
    url = bouncer.url(db.url);
  });
  afterAll(async () => {
    await bouncer?.stop();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
  });

  async function stored() {
    const [row] = await db.sql<{ messages: number; events: number }[]>`
      SELECT (SELECT count(*) FROM messages)::int AS messages, (SELECT count(*) FROM posthog_outbox.outbox)::int AS events`; // one event per record() call: a row each
    return row!;
  }

  /** 40 handler transactions from 8 clients over 2 server connections: 20 commit, 20 roll back. */
  async function handlers(transaction: (i: number, commit: boolean) => Promise<unknown>) {
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        for (let i = lane; i < 40; i += 8) {
          const commit = i % 2 === 0;
          const outcome = transaction(i, commit);
          if (commit) await outcome;
          else await expect(outcome).rejects.toThrow('roll back');
        }
      }),
    );
    expect(await stored()).toEqual({ messages: 20, events: 20 });
    const seqs = (await queuedEvents(db.sql)).map((e) => (e.properties as { seq: number }).seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
  }

  it("drizzle over postgres.js with prepare: false: commits with the handler's row, rolls back with it", async () => {
    const client = postgres(url, { prepare: false, max: 8, onnotice: () => {} });
    const orm = drizzle(client);
    try {
      await handlers((i, commit) =>
        orm.transaction(async (tx) => {
          await tx.execute(dsql`INSERT INTO messages (body) VALUES (${`m${i}`})`);
          await record(tx, event(i));
          if (!commit) throw new Error('roll back');
        }),
      );
    } finally {
      await client.end();
    }
  });

  it("postgres.js with prepare: false (sql.begin), pipelined with the handler's insert", async () => {
    const client = postgres(url, { prepare: false, max: 8, onnotice: () => {} });
    try {
      await handlers((i, commit) =>
        client.begin(async (tx) => {
          await Promise.all([tx`INSERT INTO messages (body) VALUES (${`m${i}`})`, record(tx, event(i))]);
          if (!commit) throw new Error('roll back');
        }),
      );
    } finally {
      await client.end();
    }
  });

  it("drizzle over node-postgres: commits with the handler's row, rolls back with it", async () => {
    const pool = new pg.Pool({ connectionString: url, max: 8 });
    const orm = drizzlePg(pool);
    try {
      await handlers((i, commit) =>
        orm.transaction(async (tx) => {
          await tx.execute(dsql`INSERT INTO messages (body) VALUES (${`m${i}`})`);
          await record(tx, event(i));
          if (!commit) throw new Error('roll back');
        }),
      );
    } finally {
      await pool.end();
    }
  });
});
