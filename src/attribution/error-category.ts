/** Error categories and the reported error message (docs/attribution.md, "Error categories"). Pure. */
import { redactSecrets } from '../errors/redact.ts';

export type ErrorCategory = 'aborted' | 'insufficient_funds' | 'rate_limit' | 'timeout' | 'auth' | 'tool_error' | 'model_error' | 'unknown';

const SEP = '[\\s_-]?';

/** First match wins, in this order, case-insensitive, on the error's message. */
export const ERROR_CATEGORY_PATTERNS: readonly [ErrorCategory, RegExp][] = [
  ['insufficient_funds', new RegExp(`insufficient|no credits|out of credits|balance|payment|quota exceeded|key${SEP}limit|total${SEP}limit|\\b402\\b`, 'i')],
  ['rate_limit', new RegExp(`rate${SEP}limit|too many requests|\\b429\\b`, 'i')],
  ['timeout', /timeout|timed out|deadline/i],
  ['auth', new RegExp(`unauthori|forbidden|\\b401\\b|\\b403\\b|invalid${SEP}(?:api${SEP})?(?:key|token)`, 'i')],
  ['tool_error', /tool|mcp|connection/i],
  ['model_error', /model|provider|anthropic|openai|gemini|claude/i],
];

/** The message of anything thrown: an error's `message`, a string as is, else its JSON or string form. */
export function messageOf(error: unknown): string {
  if (typeof error === 'string') return error;
  if (error !== null && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  try {
    const json = JSON.stringify(error);
    if (typeof json === 'string') return json;
  } catch {
    // fall through to String()
  }
  return String(error);
}

function isAbortError(error: unknown): boolean {
  return error !== null && typeof error === 'object' && (error as { name?: unknown }).name === 'AbortError';
}

/** `error_category`: `aborted` for an `AbortError`, else the first pattern matching the message, else `unknown`. */
export function errorCategory(error: unknown): ErrorCategory {
  if (isAbortError(error)) return 'aborted';
  const message = messageOf(error);
  for (const [category, pattern] of ERROR_CATEGORY_PATTERNS) if (pattern.test(message)) return category;
  return 'unknown';
}

export const MAX_ERROR_MESSAGE_LENGTH = 1000;
/** Cuts to at most `max` UTF-16 units without leaving half a surrogate pair (which would not be valid JSON text). */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

/** `error_message`: the message with secrets redacted, then cut to 1,000 characters (redacting first, so a cut never exposes half a secret). */
export function errorMessage(error: unknown): string {
  // toWellFormed: a lone surrogate in a message would make the event unstorable; it becomes U+FFFD.
  return cut(redactSecrets(messageOf(error).toWellFormed()), MAX_ERROR_MESSAGE_LENGTH);
}
