/**
 * The dedicated backfill role documented in docs/hosted-postgres.md (the ```sql backfill-role block, run verbatim with a
 * unique role name). `READ ONLY` stops the backfill's queries from writing tables, not from everything a
 * function can do; the role is what bounds them: it can read the profile tables and write what the backfill
 * itself writes, and nothing else of the application.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors/errors.ts';
import { backfillProfiles } from '../../src/ops/index.ts';
import { createTestDatabase, dropWithRoles, type TestDatabase } from '../support/db.ts';
import { docBlock } from '../support/docs.ts';

const role = `posthog_outbox_backfill_${randomBytes(4).toString('hex')}`;

function roleFromDocs(): string {
  return docBlock('docs/hosted-postgres.md', 'sql backfill-role').replaceAll('posthog_outbox_backfill', role);
}

let db: TestDatabase;
let asRole: postgres.Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  // the application's tables, as the backfill example in docs/operating.md names them, and one the backfill has no business reading
  await db.sql.unsafe(`
    CREATE TABLE users (id bigint PRIMARY KEY, email text, name text);
    CREATE TABLE organizations (id text PRIMARY KEY, name text, slug text);
    CREATE TABLE automations (id text PRIMARY KEY, title text, owner_id bigint, org_id text);
    CREATE TABLE payment_cards (id bigint PRIMARY KEY, number text);
    INSERT INTO users SELECT i, 'u' || i || '@example.com', NULL FROM generate_series(1, 5) AS i;
    INSERT INTO organizations VALUES ('org_1', 'Acme', 'acme');
    INSERT INTO automations VALUES ('auto_1', 'Digest', 1, 'org_1');
    INSERT INTO payment_cards VALUES (1, '4111111111111111');
  `);
  await db.sql.unsafe(roleFromDocs());
  const url = new URL(db.url);
  url.username = role;
  url.password = 'change-me';
  asRole = postgres(url.toString(), { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await asRole?.end({ timeout: 5 });
  if (db) await dropWithRoles(db, [role]);
});

it('the backfill runs as the documented role: every profile enqueued, its position recorded', async () => {
  const result = await backfillProfiles(asRole, {
    queries: {
      users: 'SELECT id, email, name FROM users',
      organizations: 'SELECT id, name, slug FROM organizations',
      automations: 'SELECT id, title AS name, owner_id AS owner_user_id, org_id AS organization_id FROM automations',
    },
  });
  expect(result.outcomes.map((o) => [o.entity, o.enqueued])).toEqual([
    ['users', 5],
    ['organizations', 1],
    ['automations', 1],
  ]);
  const [queued] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`;
  expect(queued!.n).toBe(7);
});

it('as that role, a query cannot read what it was not granted, nor take over the outbox', async () => {
  const error = await backfillProfiles(asRole, {
    queries: { users: 'SELECT id, number AS email, NULL AS name FROM payment_cards' },
    restart: true,
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OutboxError);
  expect((error as Error).message).toMatch(/permission denied for table payment_cards/);
  // nor delete what the worker delivers (READ ONLY aside: the role has no DELETE on the outbox)
  await expect(asRole`DELETE FROM posthog_outbox.outbox`).rejects.toThrow(/permission denied for table outbox/);
});
