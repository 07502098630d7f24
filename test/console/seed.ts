/** Seeding the outbox for the console's tests: dead letters as the worker writes them. */
import type postgres from 'postgres';

/** Moves outbox rows to the dead letters as the worker does, with a reason and a time of death. */
export async function killEvents(sql: postgres.Sql, uuids: readonly string[], reason: string, diedAt = new Date()): Promise<void> {
  await sql`
    WITH dead AS (DELETE FROM posthog_outbox.outbox WHERE uuid = ANY(${uuids as string[]}::uuid[]) RETURNING *)
    INSERT INTO posthog_outbox.dead_letters (uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, automation_id,
      automation_profile, organization_id, organization_profile, attempts, last_error, created_at, reason, died_at)
    SELECT uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, automation_id, automation_profile,
      organization_id, organization_profile, 3, last_error, created_at, ${reason}, ${diedAt} FROM dead`;
}
