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
export { withConnection } from './connection.ts';
/** `postgres://user:***@host:port/db`: a database URL safe to print or log. */
export { redactUrl } from '../connection/config.ts';
export { countDeadLettersBefore, type DeadLetter, listDeadLetters, purgeDeadLetters, retryAllDeadLetters, retryDeadLetters } from './dead-letters.ts';
export { type EntityKind, type Forgotten, forget } from './forget.ts';
export { type OutboxStatus, readStatus } from './status.ts';
