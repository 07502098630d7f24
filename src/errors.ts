/**
 * The one error class the library throws for bad input. `field` names what is at fault
 * (a dotted path such as `context.user.id` or `properties.foo[2]`), `code` says what is wrong with it.
 * `record()` throws it before any SQL runs, so nothing partial is ever written; the CLI maps it to exit 2.
 */
export type OutboxErrorCode =
  /** a required value is missing, null or empty */
  | 'required'
  /** a value has the wrong type or shape */
  | 'invalid'
  /** a string or id is longer than PostHog accepts */
  | 'too_long'
  /** a value cannot be stored as JSON and sent to PostHog unchanged (cycle, NaN, BigInt, lone surrogate, ...) */
  | 'not_serializable'
  /** the serialized event is larger than PostHog's per-event limit */
  | 'too_large'
  /** a custom property collides with a property the attribution contract owns */
  | 'reserved'
  /** a run tracker was ended twice */
  | 'run_ended'
  /** the transaction argument is not a connection of a client `record()` accepts */
  | 'invalid_transaction'
  /** the database's outbox schema was migrated by a newer release than this one (upgrade the package) */
  | 'schema_too_new'
  /** the database's outbox schema lacks migrations this release needs (run `migrate`) */
  | 'schema_too_old';

export class OutboxError extends Error {
  override readonly name = 'OutboxError';
  readonly code: OutboxErrorCode;
  readonly field: string;

  constructor(code: OutboxErrorCode, field: string, message: string, options?: { cause?: unknown }) {
    super(`${field}: ${message}`, options);
    this.code = code;
    this.field = field;
  }
}
