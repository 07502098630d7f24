/**
 * LLM analytics (docs/attribution.md, "LLM analytics"): the `$ai_generation`, `$ai_span` and `$ai_trace` events
 * PostHog's LLM analytics reads, which the run tracker (run.ts) builds beside its product events when a run is
 * started with `llmAnalytics`. Property names and units are PostHog's (its manual-capture docs, and what its
 * `@posthog/ai` wrappers send): latencies in seconds, token counts as the provider reports them, costs in USD.
 * One trace per run: every `$ai_*` event of a run carries its `$ai_trace_id`, and generations and spans are
 * its children (`$ai_parent_id`). Pure.
 */
import { OutboxError } from '../errors/errors.ts';
import type { OutboxEvent, ProfileSnapshots } from '../record/event.ts';
import { describe } from '../record/limits.ts';
import { redactSecrets } from '../errors/redact.ts';
import { uuidv7 } from '../record/uuid.ts';
import type { Attribution } from './context.ts';
import { errorMessage } from './error-category.ts';
import { buildEvent, checkDuration } from './events.ts';

/** `startRun(context, start, { llmAnalytics })`: `true`, or these options (an object turns it on too). */
export interface LlmAnalyticsOptions {
  /**
   * Send the message content a model call passes (`input`, `output`) as `$ai_input` / `$ai_output_choices`,
   * secrets redacted as in `error_message`. Default false: no content, even when a call passes it.
   */
  content?: boolean;
}

/** What a model call tells LLM analytics beyond the model and the token counts the run sums (all optional). */
export interface ModelCallDetails {
  /** `openai`, `anthropic`, ... as PostHog's cost tables name them; a call without one used the last provider named in the run. */
  provider?: string | null;
  /** How long the call took, and until its first streamed token: sent in seconds. */
  latencyMs?: number | null;
  timeToFirstTokenMs?: number | null;
  /** The call failed: `isError: true`, or the `error` it failed with (its message is sent redacted, as `error_message`). */
  isError?: boolean | null;
  error?: unknown;
  httpStatus?: number | null;
  cacheReadInputTokens?: number | null;
  cacheCreationInputTokens?: number | null;
  reasoningTokens?: number | null;
  /** What the call cost, when you know it; without them PostHog computes the cost from the model, the provider and the tokens. */
  inputCostUsd?: number | null;
  outputCostUsd?: number | null;
  totalCostUsd?: number | null;
  /** The messages sent and the choices received: sent only with `llmAnalytics: { content: true }`, secrets redacted. */
  input?: unknown;
  output?: unknown;
}

/** A whole number >= 0 (a token count), or null when absent. */
export function count(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new OutboxError('invalid', field, `must be a whole number >= 0, got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

/** A duration in milliseconds (finite, >= 0, rounded to a whole millisecond) as PostHog's seconds, or null when absent. */
function seconds(value: unknown, field: string): number | null {
  return value === undefined || value === null ? null : checkDuration(value, field) / 1000;
}

function usd(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new OutboxError('invalid', field, `must be a finite number >= 0 (US dollars), got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

function httpStatus(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 100 || value > 599) {
    throw new OutboxError(
      'invalid',
      'call.httpStatus',
      `must be an HTTP status (a whole number 100..599), got ${typeof value === 'number' ? value : typeof value}`,
    );
  }
  return value;
}

/** Whether the call failed: `isError` when given, else whether it passed an `error`; both, they must agree. */
function failed(call: ModelCallDetails): boolean {
  const given = call.error !== undefined && call.error !== null;
  if (call.isError === undefined || call.isError === null) return given;
  if (typeof call.isError !== 'boolean') throw new OutboxError('invalid', 'call.isError', `must be a boolean, got ${typeof call.isError}`);
  if (!call.isError && given) throw new OutboxError('invalid', 'call.isError', 'is false, but the call passes an error');
  return call.isError;
}

const CONTENT_DEPTH = 64;

/**
 * Message content as sent: a copy in which every string has its secrets redacted (`redactSecrets`, as in
 * `error_message`) and what PostgreSQL cannot store (a lone surrogate, a NUL) replaced by U+FFFD. Anything that
 * is not JSON (a class instance, a function, NaN, a cycle) is refused, naming where it is.
 */
export function redactContent(value: unknown, field: string, path: (string | number)[] = []): unknown {
  const at = () =>
    path.reduce<string>(
      (f, key) => (typeof key === 'number' ? `${f}[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `${f}.${key}` : `${f}[${JSON.stringify(key)}]`),
      field,
    );
  if (typeof value === 'string') return redactSecrets(value.toWellFormed()).replaceAll('\u0000', '\uFFFD');
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    throw new OutboxError('not_serializable', at(), `${value} is not a JSON number`);
  }
  if (typeof value === 'object' && path.length >= CONTENT_DEPTH)
    throw new OutboxError('not_serializable', at(), `is nested deeper than ${CONTENT_DEPTH} levels`);
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      if (item === undefined) throw new OutboxError('not_serializable', `${at()}[${i}]`, 'is undefined (JSON would turn it into null)');
      return redactContent(item, field, [...path, i]);
    });
  }
  const proto = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new OutboxError(
      'not_serializable',
      at(),
      `is ${describe(value)}; message content must be JSON (strings, numbers, booleans, null, arrays, plain objects)`,
    );
  }
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as object)) if (item !== undefined) copy[key] = redactContent(item, field, [...path, key]);
  return copy;
}

/** The `$ai_generation` properties of a model call, checked: all but the trace's ids, the model and the provider. */
export function generationDetails(call: ModelCallDetails, input: number, output: number, content: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { $ai_input_tokens: input, $ai_output_tokens: output };
  const optional: [string, unknown][] = [
    ['$ai_cache_read_input_tokens', count(call.cacheReadInputTokens, 'call.cacheReadInputTokens')],
    ['$ai_cache_creation_input_tokens', count(call.cacheCreationInputTokens, 'call.cacheCreationInputTokens')],
    ['$ai_reasoning_tokens', count(call.reasoningTokens, 'call.reasoningTokens')],
    ['$ai_latency', seconds(call.latencyMs, 'call.latencyMs')],
    ['$ai_time_to_first_token', seconds(call.timeToFirstTokenMs, 'call.timeToFirstTokenMs')],
    ['$ai_http_status', httpStatus(call.httpStatus)],
  ];
  for (const [key, value] of optional) if (value !== null) out[key] = value;
  out.$ai_is_error = failed(call);
  if (call.error !== undefined && call.error !== null) out.$ai_error = errorMessage(call.error);
  for (const [key, name] of [
    ['$ai_input_cost_usd', 'inputCostUsd'],
    ['$ai_output_cost_usd', 'outputCostUsd'],
    ['$ai_total_cost_usd', 'totalCostUsd'],
  ] as const) {
    const value = usd(call[name], `call.${name}`);
    if (value !== null) out[key] = value;
  }
  if (content && call.input !== undefined) out.$ai_input = redactContent(call.input, 'call.input');
  if (content && call.output !== undefined) out.$ai_output_choices = redactContent(call.output, 'call.output');
  return out;
}

/** Checks `llmAnalytics` of the run options: off (null), or on with or without content. */
export function llmAnalyticsOption(value: unknown): { content: boolean } | null {
  if (value === undefined || value === null || value === false) return null;
  if (value === true) return { content: false };
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new OutboxError('invalid', 'options.llmAnalytics', `must be a boolean or { content?: boolean }, got ${describe(value)}`);
  }
  const content = (value as LlmAnalyticsOptions).content;
  if (content !== undefined && typeof content !== 'boolean') {
    throw new OutboxError('invalid', 'options.llmAnalytics.content', `must be a boolean, got ${describe(content)}`);
  }
  return { content: content ?? false };
}

/**
 * The `$ai_*` events of one run. They carry the run's distinct id, groups and attribution properties, and its
 * entities' ids without their profile fields: `forget` finds their rows like any other event of the entity,
 * and they never change what re-identification sends (the run's own events carry the profiles).
 */
export class LlmTrace {
  /** `$ai_trace_id`: a UUIDv7, new for each run. */
  readonly id = uuidv7();
  readonly content: boolean;
  private readonly attr: Attribution;
  private readonly profiles: ProfileSnapshots;

  constructor(attr: Attribution, options: { content: boolean }) {
    this.attr = attr;
    this.content = options.content;
    this.profiles = {};
    for (const kind of ['user', 'automation', 'organization'] as const) {
      const entity = attr.profiles[kind];
      if (entity) this.profiles[kind] = { id: entity.id, fields: {} };
    }
  }

  private event(name: string, own: Record<string, unknown>, at: Date): OutboxEvent {
    const session = this.attr.properties.thread_id;
    const ids = { $ai_trace_id: this.id, ...(session === null ? {} : { $ai_session_id: session }) };
    return { ...buildEvent(this.attr, name, { ...ids, ...own }, at), profiles: this.profiles };
  }

  /** `$ai_generation`: one model call, a child of the trace. */
  generation(model: string, provider: string | null, details: Record<string, unknown>, at: Date): OutboxEvent {
    const head = { $ai_span_id: uuidv7(), $ai_parent_id: this.id, $ai_model: model, ...(provider === null ? {} : { $ai_provider: provider }) };
    return this.event('$ai_generation', { ...head, ...details }, at);
  }

  /** `$ai_span`: one tool execution (its `tool_called` event, and what it threw), a child of the trace. */
  span(tool: OutboxEvent, threw: { error: unknown } | null): OutboxEvent {
    const p = tool.properties;
    return this.event(
      '$ai_span',
      {
        $ai_span_id: uuidv7(),
        $ai_parent_id: this.id,
        $ai_span_name: p.tool_name,
        $ai_latency: (p.latency_ms as number) / 1000,
        $ai_is_error: p.is_error,
        ...(threw ? { $ai_error: errorMessage(threw.error) } : {}),
      },
      tool.timestamp!,
    );
  }

  /** `$ai_trace`: the run's end, whichever it was; an error only when the run failed. */
  end(name: string | null, durationMs: number, failure: { error: unknown } | null, at: Date): OutboxEvent {
    return this.event(
      '$ai_trace',
      {
        ...(name === null ? {} : { $ai_span_name: name }),
        $ai_latency: durationMs / 1000,
        $ai_is_error: failure !== null,
        ...(failure ? { $ai_error: errorMessage(failure.error) } : {}),
      },
      at,
    );
  }
}
