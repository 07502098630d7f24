/**
 * Every event queued in the outbox, packs opened: a row of one event as it is, each event of a pack (several
 * events of one `record()` call in one row) with its pack's delivery columns. For tests that check what
 * `record()` stored whatever the row layout.
 */
import type postgres from 'postgres';
import { RECORD_COLUMNS, unpack } from '../../src/sql/index.ts';

export interface QueuedEvent {
  uuid: string;
  event: string;
  distinctId: string;
  properties: Record<string, unknown>;
  groups: Record<string, string>;
  timestamp: Date;
  userId: string | null;
  userProfile: Record<string, unknown> | null;
  automationId: string | null;
  automationProfile: Record<string, unknown> | null;
  organizationId: string | null;
  organizationProfile: Record<string, unknown> | null;
  attempts: number;
  createdAt: Date;
  nextAttemptAt: Date;
  /** The uuid of the pack holding it; null for a row of its own. */
  pack: string | null;
}

const camel = (name: string) => name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());

/** The queued events in uuid order (their write order). */
export function queuedEvents(sql: postgres.Sql, schema = 'posthog_outbox'): Promise<QueuedEvent[]> {
  const typed = RECORD_COLUMNS.map(([name, type]) => `"${name}" ${type}`).join(', ');
  const columns = RECORD_COLUMNS.map(([name]) => `COALESCE(e."${name}", o."${name}") AS "${camel(name)}"`).join(', ');
  return sql.unsafe<QueuedEvent[]>(`SELECT ${columns}, o."attempts", o."created_at" AS "createdAt", o."next_attempt_at" AS "nextAttemptAt",
  CASE WHEN o."events" IS NULL THEN NULL ELSE o."uuid" END AS "pack"
FROM "${schema}"."outbox" o LEFT JOIN LATERAL json_to_recordset(o."events") AS e(${typed}) ON true
ORDER BY 1`) as unknown as Promise<QueuedEvent[]>;
}

/**
 * Turns every pack into rows of one event each, with the product's own statement (what the worker does
 * before it settles a pack's events apart), for tests that change stored events by uuid.
 */
export async function splitPacks(sql: postgres.Sql, schema = 'posthog_outbox'): Promise<void> {
  const [found] = await sql.unsafe<{ packs: string[] | null; events: string | null }[]>(
    `SELECT array_agg(DISTINCT o."uuid"::text) AS "packs", json_agg(e."value"::jsonb || jsonb_build_object('pack', o."uuid"))::text AS "events"
     FROM "${schema}"."outbox" o CROSS JOIN LATERAL json_array_elements(o."events") AS e("value") WHERE o."events" IS NOT NULL`,
  );
  if (found?.packs) await sql.unsafe(unpack(schema), [found.packs, found.events]);
}
