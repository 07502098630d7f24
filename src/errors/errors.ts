/**
 * The one error class the library throws for bad input, structured: `code` says what kind of fault,
 * `field` names what is at fault (a dotted path such as `context.user.id`, `properties.foo[2]` or a setting
 * such as `posthog.requestTimeoutMs`), `detail` says what is wrong with it, and `message` is always
 * `${field}: ${detail}`. Code that shows it in other terms (the CLI names its flags) reads `field` and
 * `detail`, never the message. `record()` throws it before any SQL runs, so nothing partial is ever
 * written; the CLI maps it to exit 2.
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
  | 'schema_too_old'
  /** a connection URL leads to a transaction-mode pooler, where a session of its own is needed */
  | 'transaction_pooler'
  /** an interrupted operation cannot be resumed as asked, its input changed (start it over) */
  | 'cannot_resume';

export class OutboxError extends Error {
  override readonly name = 'OutboxError';
  readonly code: OutboxErrorCode;
  readonly field: string;
  /** What is wrong with `field`, without naming it. */
  readonly detail: string;

  constructor(code: OutboxErrorCode, field: string, detail: string, options?: { cause?: unknown }) {
    super(`${field}: ${detail}`, options);
    this.code = code;
    this.field = field;
    this.detail = detail;
  }

  /** The same fault, about `field` instead (e.g. the setting a value was passed on to); this error is its cause. */
  about(field: string): OutboxError {
    return new OutboxError(this.code, field, this.detail, { cause: this });
  }
}
