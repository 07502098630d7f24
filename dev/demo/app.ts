/**
 * The demo application's own tables and writes: what a handler writes in the same transaction as its
 * events (a chat message, an automation). This is the application's SQL, not the package's: the package's
 * statements are in src/sql.ts.
 */
import type postgres from 'postgres';
import type { DemoAutomation } from './plan.ts';

/** Postgres schema of the demo application's own tables (`messages`, `automations`). */
export const DEMO_APP_SCHEMA = 'posthog_demo_app';

export interface MessageRow {
  thread: string;
  author: string;
  kind: string;
  body: string;
}

/** Creates the demo application's tables (idempotent). */
export async function createDemoTables(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${DEMO_APP_SCHEMA}`);
  await sql.unsafe(`CREATE TABLE IF NOT EXISTS ${DEMO_APP_SCHEMA}.messages (
    id bigserial PRIMARY KEY,
    thread_id text NOT NULL,
    author text NOT NULL,
    kind text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
  await sql.unsafe(`CREATE TABLE IF NOT EXISTS ${DEMO_APP_SCHEMA}.automations (
    id text PRIMARY KEY,
    organization_id text NOT NULL,
    owner_user_id text NOT NULL,
    name text,
    trigger_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
}

export async function insertMessage(tx: postgres.TransactionSql, row: MessageRow): Promise<void> {
  await tx`INSERT INTO ${tx(DEMO_APP_SCHEMA)}.messages (thread_id, author, kind, body) VALUES (${row.thread}, ${row.author}, ${row.kind}, ${row.body})`;
}

export async function saveAutomation(tx: postgres.TransactionSql, automation: DemoAutomation): Promise<void> {
  await tx`INSERT INTO ${tx(DEMO_APP_SCHEMA)}.automations (id, organization_id, owner_user_id, name, trigger_id)
    VALUES (${automation.id}, ${automation.organizationId}, ${automation.ownerUserId}, ${automation.name}, ${automation.trigger.id})
    ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, trigger_id = EXCLUDED.trigger_id`;
}
