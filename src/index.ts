/**
 * posthog-outbox, the handler side: build attributed events and record them in your own transaction.
 * The worker that delivers them is `posthog-outbox/worker` (or the `posthog-outbox worker` CLI).
 */
export { record, type RecordOptions, type Recordable } from './record/record.ts';
export type {
  Connection,
  DrizzleConnection,
  KnexConnection,
  KyselyConnection,
  MikroOrmEntityManager,
  NodePostgresConnection,
  PGliteConnection,
  PostgresJsConnection,
  PrismaTransaction,
  SequelizeTransaction,
  TypeOrmConnection,
} from './record/executor.ts';
export { OutboxError, type OutboxErrorCode } from './errors/errors.ts';
export type { OutboxEvent, ProfileFields, ProfileSnapshots } from './record/event.ts';

export { startRun, Run, type RunStart, type ModelCall, type RunCompletion, type RunOptions, type RunEvents, type Generation } from './attribution/run.ts';
export type { LlmAnalyticsOptions, ModelCallDetails } from './attribution/llm.ts';
export { attributedEvent, toolCalled, type ToolCall, type ToolAnnotations, CATALOGUE_EVENTS } from './attribution/events.ts';
export { attribution, userAgentFrom, ATTRIBUTION_KEYS, type RunContext, type Attribution, type AttributionProperties } from './attribution/context.ts';
export { abortReason, ABORT_REASONS, type AbortReason } from './attribution/abort.ts';
export { errorCategory, errorMessage, type ErrorCategory } from './attribution/error-category.ts';

export { outbox, deadLetters, posthogOutbox, outboxSchema, DEFAULT_SCHEMA, type OutboxTables } from './outbox/schema.ts';
export { migrate, type MigrateOptions, type MigrateResult } from './outbox/migrate.ts';
