/**
 * Every SQL statement the library and the worker run, as plain functions of the schema name, so they can
 * be read and reviewed together: this folder and migrations/ are the only places that hold SQL.
 * Parameters are positional (`$1`, ...); callers pass them alongside. One module per concern, along the
 * data path:
 *
 * - columns.ts: the schema name check and the outbox's columns, declared once
 * - record.ts: the handler's write (`record()`)
 * - migrations.ts: `migrate`'s journal and locks
 * - drain.ts: the worker's claim, lease and settling of a batch; its idle probes
 * - identities.ts: re-identification (the `identities` memory)
 * - health.ts: connection checks, pooler detection, the PostHog target's health
 * - status.ts: `status` and the worker's metrics
 * - dead-letters.ts: listing, retrying, purging and expiring dead letters
 * - forget.ts: erasure requests
 * - backfill.ts: `backfill-profiles`
 * - inspect.ts: what the operator console reads beyond `status` (and its discarding of dead letters)
 */
export {
  advanceBackfill,
  backfillState,
  countProfiles,
  finishBackfill,
  profileIdType,
  profilesPage,
  readOnlyQueries,
  startBackfill,
  tryLockBackfill,
  unlockBackfill,
} from './backfill.ts';
export { IDENTITY_COLUMNS, type IdentityColumn, quoteSchema, RECORD_COLUMNS, type RecordColumn } from './columns.ts';
export {
  countDeadLetters,
  countDeadLettersBefore,
  expireDeadLetters,
  listDeadLetters,
  purgeDeadLetters,
  retryDeadLetters,
  retryDeadLettersBatch,
} from './dead-letters.ts';
export {
  anyDue,
  beginClaim,
  claimBatch,
  deadLetter,
  deleteRows,
  nextDue,
  resumeWaitingRows,
  scheduleRetry,
  type ScheduleRetryParameters,
  CLAIM_BYTES,
} from './drain.ts';
export { forgetEntity, forgetProfiles } from './forget.ts';
export {
  backendPid,
  boundStatements,
  installed,
  markDrainFailing,
  markDrainWorking,
  markTargetFailing,
  markTargetWorking,
  ping,
  probeOutbox,
  targetHealth,
} from './health.ts';
export { deleteDeliveredAndRemember, identitiesStatus, rememberIdentities } from './identities.ts';
export {
  backlogByEvent,
  beginSnapshot,
  discardDeadLetters,
  endSnapshot,
  findDeadLetters,
  hasTable,
  profilesByKind,
  readDeadLetter,
  sessionsNamed,
  tableCounters,
  workerInstances,
} from './inspect.ts';
export { appliedMigrations, createJournal, insertJournalEntry, journalExists, lockMigrations, setLockTimeout } from './migrations.ts';
export { insertEvents, VALUES_ROWS_LIMIT } from './record.ts';
export { cappedCount, deadLettersByReason, oldestEventAge, outboxStatus, retryingRows } from './status.ts';
