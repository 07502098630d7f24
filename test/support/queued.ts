/**
 * Every event queued in the outbox (a row each), in uuid order, with its delivery columns: for tests that
 * check what `record()` stored.
 */
import type postgres from 'postgres';
import { RECORD_COLUMNS } from '../../src/outbox/columns.ts';

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
}

const camel = (name: string) => name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());

/** The queued events in uuid order (their write order). */
export function queuedEvents(sql: postgres.Sql, schema = 'posthog_outbox'): Promise<QueuedEvent[]> {
  const columns = RECORD_COLUMNS.map(([name]) => `"${name}" AS "${camel(name)}"`).join(', ');
  return sql.unsafe<QueuedEvent[]>(`SELECT ${columns}, "attempts", "created_at" AS "createdAt", "next_attempt_at" AS "nextAttemptAt"
FROM "${schema}"."outbox" ORDER BY "uuid"`) as unknown as Promise<QueuedEvent[]>;
}
