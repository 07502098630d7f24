/**
 * Event builders: each returns an `OutboxEvent` (event, distinct id, properties, groups, profile snapshots)
 * for `record()`. Pure: nothing is written until you pass the result to `record(tx, ...)`.
 * Chat run events come from the run tracker (`startRun`, in run.ts); tool calls and your own events from here.
 */
import { OutboxError } from '../errors/errors.ts';
import type { OutboxEvent } from '../record/event.ts';
import { checkId, checkTimestamp } from '../record/limits.ts';
import { ATTRIBUTION_KEYS, attribution, type Attribution, type RunContext } from './context.ts';

/** The events whose shape the contract fixes; only the run tracker and `toolCalled` build them. */
export const CATALOGUE_EVENTS = ['chat_message_started', 'chat_message_completed', 'chat_message_aborted', 'chat_message_failed', 'tool_called'] as const;
export type CatalogueEvent = (typeof CATALOGUE_EVENTS)[number];

/** A context, or an attribution already derived from one (the run tracker derives it once per run). */
export type ContextOrAttribution = RunContext | Attribution;

export function attributionOf(source: ContextOrAttribution): Attribution {
  return 'distinctId' in source && 'profiles' in source ? (source as Attribution) : attribution(source as RunContext);
}

/**
 * Assembles an attributed event: the attribution's properties first, then the event's own. A `timestamp` is
 * checked as `record()` checks it (src/record/limits.ts `checkTimestamp`: a valid Date in 1970..9999), the error naming
 * `timestampField`.
 */
export function buildEvent(attr: Attribution, event: string, own: Record<string, unknown>, timestamp?: Date, timestampField = 'timestamp'): OutboxEvent {
  if (timestamp !== undefined) checkTimestamp(timestamp, timestampField);
  return {
    event,
    distinctId: attr.distinctId,
    properties: { ...attr.properties, ...own },
    groups: { ...attr.groups },
    ...(timestamp ? { timestamp } : {}),
    profiles: attr.profiles,
  };
}

/**
 * An application event (`chat_started`, `automation_created`, ...) with the same attribution as chat and
 * tool events: distinct id, `$groups`, the attribution properties and the profile snapshots.
 * `properties` may not reuse an attribution key; the catalogue events have their own builders, and names
 * starting with `$` are PostHog's.
 *
 * @example
 * await record(tx, attributedEvent(context, 'automation_created', { automation_id: created.id }));
 */
export function attributedEvent(context: ContextOrAttribution, event: string, properties: Record<string, unknown> = {}): OutboxEvent {
  checkId(event, 'event');
  if (event.startsWith('$')) {
    throw new OutboxError(
      'reserved',
      'event',
      `"${event}": names starting with "$" are PostHog's own events ($identify, $groupidentify, ...), which the worker sends`,
    );
  }
  if ((CATALOGUE_EVENTS as readonly string[]).includes(event)) {
    throw new OutboxError('reserved', 'event', `"${event}" is built by the run tracker or toolCalled(), which apply its contract`);
  }
  if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) {
    throw new OutboxError('invalid', 'properties', 'must be an object');
  }
  for (const key of ATTRIBUTION_KEYS) {
    if (Object.hasOwn(properties, key))
      throw new OutboxError('reserved', `properties.${key}`, 'is set from the run context; remove it from the custom properties');
  }
  return buildEvent(attributionOf(context), event, properties);
}

/** MCP tool annotations (the hints a tool declares). */
export interface ToolAnnotations {
  readOnlyHint?: boolean | null;
  destructiveHint?: boolean | null;
  idempotentHint?: boolean | null;
  openWorldHint?: boolean | null;
}

interface ToolCallBase {
  /** The tool's name as the agent sees it. */
  toolName: string;
  /** The sanitised name sent to the model, when it differs. */
  toolSafeName?: string | null;
  /** `mcp` for a tool from an MCP server, `builtin` for one of the platform's own. */
  source: 'mcp' | 'builtin';
  /** The tool's annotations; a hint it does not declare is reported as `null`. */
  annotations?: ToolAnnotations | null;
  /** How long the execution took. */
  latencyMs: number;
}

/** One tool execution: pass `result` when it returned (its `isError` is honoured) or `error` when it threw. */
export type ToolCall = ToolCallBase & ({ result: unknown; error?: never } | { error: unknown; result?: never });

function hint(annotations: ToolAnnotations | null | undefined, key: keyof ToolAnnotations): boolean | null {
  const value = annotations?.[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'boolean') throw new OutboxError('invalid', `call.annotations.${key}`, `must be a boolean, got ${typeof value}`);
  return value;
}

export function checkDuration(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new OutboxError('invalid', field, `must be a finite number >= 0, got ${typeof value === 'number' ? value : typeof value}`);
  }
  return Math.round(value);
}

/**
 * A `tool_called` event: every tool execution, success or not. `timestamp` (when the call happened; `record()`
 * uses the write time without one) must be a valid Date in 1970..9999 UTC (src/record/limits.ts `checkTimestamp`).
 */
export function toolCalled(context: ContextOrAttribution, call: ToolCall, timestamp?: Date): OutboxEvent {
  if (call === null || typeof call !== 'object') throw new OutboxError('required', 'call', 'is required');
  checkId(call.toolName, 'call.toolName');
  if (call.toolSafeName !== undefined && call.toolSafeName !== null) checkId(call.toolSafeName, 'call.toolSafeName');
  if (call.source !== 'mcp' && call.source !== 'builtin')
    throw new OutboxError('invalid', 'call.source', `must be "mcp" or "builtin", got ${JSON.stringify(call.source)}`);
  const threw = 'error' in call;
  if (!threw && !('result' in call)) throw new OutboxError('required', 'call.result', "pass the tool's result, or `error` when it threw");
  const result = call.result as { isError?: unknown } | null | undefined;
  const isError = threw || (result !== null && typeof result === 'object' && result.isError === true);
  return buildEvent(
    attributionOf(context),
    'tool_called',
    {
      tool_name: call.toolName,
      tool_safe_name: call.toolSafeName ?? null,
      tool_source: call.source,
      read_only: hint(call.annotations, 'readOnlyHint'),
      destructive: hint(call.annotations, 'destructiveHint'),
      idempotent: hint(call.annotations, 'idempotentHint'),
      open_world: hint(call.annotations, 'openWorldHint'),
      latency_ms: checkDuration(call.latencyMs, 'call.latencyMs'),
      is_error: isError,
    },
    timestamp,
  );
}
