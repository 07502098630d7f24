/**
 * `posthog-outbox/ops`: the operator's operations as functions, for an application's own admin endpoints,
 * scripts and tests; the CLI commands (`status`, `dead-letters`, `backfill-profiles`, `forget`) are a thin
 * layer over them. Each takes a postgres.js client (`withConnection(url, (sql) => ...)` opens and closes one).
 */
export {
  type BackfillEntity,
  type BackfillOptions,
  type BackfillOutcome,
  type BackfillProgress,
  type BackfillResult,
  backfillProfiles,
} from './backfill.ts';
export { type BacklogByEvent, type ProfilesOfKind, readBacklogByEvent, readProfilesByKind } from './breakdown.ts';
export { withConnection } from './connection.ts';
export { type DeadLetterDetail, type DeadLetterFilter, discardDeadLetters, findDeadLetters, readDeadLetter } from './dead-letter-search.ts';
/** `postgres://user:***@host:port/db`: a database URL safe to print or log. */
export { redactUrl } from '../connection/config.ts';
export { countDeadLettersBefore, type DeadLetter, listDeadLetters, purgeDeadLetters, retryAllDeadLetters, retryDeadLetters } from './dead-letters.ts';
export { type DeliveryCounters, readDeliveryCounters } from './delivery.ts';
export { type EntityKind, type Forgotten, forget } from './forget.ts';
export { inSnapshot } from './snapshot.ts';
export { type OutboxStatus, readStatus } from './status.ts';
export { readWorkers, type Workers, type WorkerSeen } from './workers.ts';
