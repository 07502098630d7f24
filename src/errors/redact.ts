/**
 * Redaction of what must never be stored or logged outside PostHog: secrets (bearer tokens, API keys,
 * passwords in key=value form) and email addresses. Pure.
 */

export const REDACTED = '[redacted]';

/** What looks like a secret. Each match is replaced by `[redacted]` (a scheme word such as `Bearer` is kept). */
const SECRET_PATTERNS: readonly [RegExp, string][] = [
  // Credentials in a URL ("https://user:secret@host", "https://token@host"): the whole user part, up to the
  // last "@" before the path (a password may hold an unencoded "@"). Fetch errors quote the URL they refused.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>\\]*@/gi, `$1${REDACTED}@`],
  // Authorization schemes: "Bearer abc.def", "Basic dXNlcjpwYXNz"
  [/\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*/gi, `$1 ${REDACTED}`],
  // sk-..., sk_live_..., sk-ant-api03-..., sk-proj-..., also pk_/rk_ (Stripe-style) and PostHog phc_/phx_ keys
  [/\b(?:sk|pk|rk|phc|phx)[-_][A-Za-z0-9\-_]{8,}/g, REDACTED],
  // key=value and "key": "value" pairs naming a credential
  [/\b((?:api[-_]?key|access[-_]?token|refresh[-_]?token|token|secret|password|passwd)["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi, `$1${REDACTED}`],
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

/**
 * For text the outbox keeps or logs about an event (dead-letter reasons, last errors, log lines): secrets,
 * email addresses and the given literal values (e.g. the PostHog project key) replaced by `[redacted]`.
 */
export function redactForStorage(text: string, literals: readonly string[] = []): string {
  let out = redactSecrets(text).replace(EMAIL, REDACTED);
  for (const literal of literals) if (literal.length >= 4) out = out.split(literal).join(REDACTED);
  return out;
}

/**
 * A key naming a credential: `password`, `api_key`, `x-api-key`, `access_token`, `authorization`, `cookie`, ...
 * (a whole word at the end of the key, so that `$ai_input_tokens` and `credential_id` are not).
 */
const SECRET_KEY = /(^|[^a-z])(pass(word)?|passwd|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|authorization|cookie)$/i;

/**
 * A JSON value with its secrets replaced by `[redacted]`, for showing an event to an operator: every string
 * through `redactSecrets`, and the value of a key naming a credential (a string or a number) whole. Email
 * addresses are kept (they are what the event carries to PostHog). Pure: the input is not changed.
 */
export function redactJson(value: unknown): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (Array.isArray(value)) return value.map(redactJson);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[redactSecrets(key)] = SECRET_KEY.test(key) && (typeof inner === 'string' || typeof inner === 'number') ? REDACTED : redactJson(inner);
  }
  return out;
}
