/**
 * Re-identification, the I/O part: asks the `identities` memory which touched entities PostHog must be told
 * about (new, changed, or not refreshed for the interval), and enqueues their identify rows, in the caller's
 * transaction: the worker's batch transaction (so the identifies commit with the delivery that triggered
 * them) or a backfill page's. Shared by the worker (worker/settle/ledger.ts) and `backfillProfiles` (src/ops), so it
 * lives in the library beside the contract it applies (docs/attribution.md, "Re-identification").
 */
import type postgres from 'postgres';
import type { ProfileKind } from '../attribution/profiles.ts';
import type { ProfileFields } from '../record/event.ts';
import { recordIdentifies } from '../record/record.ts';
import { query } from '../sql/statement.ts';
import * as q from './identities.sql.ts';
import { identifyEvents, type Identification, type TouchedEntity } from './events.ts';

export interface IdentifyOptions {
  schema: string;
  /** Identify an unchanged entity again once its last identify is this old (0: every time it is seen). */
  refreshMs: number;
  /** Identify every entity given, changed or not (backfill `--force`). */
  force?: boolean;
}

/** Enqueues the identify rows of what the memory decided (an entity with no known field gets none). */
async function enqueue(
  tx: postgres.TransactionSql,
  rows: readonly q.Remembered[],
  schema: string,
): Promise<{ identified: Identification[]; enqueued: number }> {
  const identified = rows.map((r) => ({ kind: r.kind, id: r.entity_id, fields: r.fields, version: Number(r.version) }));
  const items = identifyEvents(identified);
  if (items.length > 0) await recordIdentifies(tx, items, schema);
  return { identified, enqueued: items.length };
}

/**
 * Decides and enqueues in `tx`, for entities given with their fields (the backfill). Returns the entities
 * identified (with their merged fields) and how many identify rows were enqueued.
 */
export async function identifyTouched(
  tx: postgres.TransactionSql,
  entities: readonly TouchedEntity[],
  options: IdentifyOptions,
): Promise<{ identified: Identification[]; enqueued: number }> {
  if (entities.length === 0) return { identified: [], enqueued: 0 };
  const incoming = JSON.stringify(entities.map((e) => ({ kind: e.kind, entity_id: e.id, fields: e.fields, event_at: e.at.toISOString() })));
  const rows = await query(
    tx,
    q.rememberIdentities(options.schema),
    { incoming, refreshMs: options.refreshMs, force: options.force ?? false },
    { prepare: true },
  );
  return enqueue(tx, rows, options.schema);
}

/**
 * The worker's version: deletes the batch's delivered rows `uuids` and re-identifies what the profile snapshots
 * of rows `read` (some of `uuids`) touched (src/identify/identities.sql.ts `deleteDeliveredAndRemember`), except the
 * entities in `exclude` (`kind:id`).
 */
export async function deleteDeliveredAndIdentify(
  tx: postgres.TransactionSql,
  uuids: readonly string[],
  options: IdentifyOptions & { exclude: readonly string[]; read: readonly string[] },
): Promise<{ identified: Identification[]; enqueued: number }> {
  const rows = await query(
    tx,
    q.deleteDeliveredAndRemember(options.schema),
    { uuids, refreshMs: options.refreshMs, force: false, exclude: options.exclude, read: options.read },
    { prepare: true },
  );
  return enqueue(tx, rows, options.schema);
}
