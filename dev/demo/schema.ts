/**
 * The demo application's own tables as drizzle declarations: what its handlers write in the same
 * transaction as their events (a chat message, an automation). They are the application's, not the
 * package's; dev/demo/schema.sql creates them (a test checks that the two agree). app.ts loads this module
 * with its first write, not before (the CLI's import graphs stay without drizzle-orm).
 */
import { bigserial, pgSchema, text, timestamp } from 'drizzle-orm/pg-core';
import { DEMO_APP_SCHEMA } from './app-schema.ts';

const demoApp = pgSchema(DEMO_APP_SCHEMA);

/** One row per chat message: the user's, a trigger's, a tool call's, a run's end, a share. */
export const messages = demoApp.table('messages', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  threadId: text('thread_id').notNull(),
  author: text('author').notNull(),
  kind: text('kind').notNull(),
  body: text('body').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

/** The automations owners create. */
export const automations = demoApp.table('automations', {
  id: text('id').primaryKey(),
  organizationId: text('organization_id').notNull(),
  ownerUserId: text('owner_user_id').notNull(),
  name: text('name'),
  triggerId: text('trigger_id').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
