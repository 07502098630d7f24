/**
 * The run tracker: one chat run from start to its single end. It remembers the start time, sums token
 * usage over every model call, and ends the run as completed, aborted(reason) or failed(error), building
 * the one event the contract asks for (or none, for a person's own cancel). Pure: it builds events,
 * `record(tx, ...)` writes them.
 */
import { OutboxError } from '../errors/errors.ts';
import type { OutboxEvent } from '../record/event.ts';
import { checkTimestamp } from '../record/limits.ts';
import { abortReason, emitsAbortEvent } from './abort.ts';
import { attribution, optionalString, type Attribution, type RunContext } from './context.ts';
import { errorCategory, errorMessage } from './error-category.ts';
import { attributedEvent, buildEvent, checkDuration, toolCalled, type ToolCall } from './events.ts';

export interface RunStart {
  agentId?: string | null;
  /** The run's mode, as your product names it. */
  mode?: string | null;
  credentialId?: string | null;
  /** True when the run resumes an earlier one. Default false. */
  isResume?: boolean;
  /** The model, when known at start; a model call or the end can change it. */
  modelId?: string | null;
  modelTitle?: string | null;
}

export interface ModelCall {
  modelId?: string | null;
  modelTitle?: string | null;
  inputTokens?: number | null;
  outputTokens?: number | null;
  /** Defaults to input + output. */
  totalTokens?: number | null;
}

export interface RunCompletion {
  finishReason?: string | null;
  threadStatus?: string | null;
  modelId?: string | null;
  modelTitle?: string | null;
}

/** The error field of a time read from the run's clock that is no event time (src/record/limits.ts `checkTimestamp`). */
const CLOCK = 'options.now';

export interface RunOptions {
  /** Clock in epoch milliseconds. Default `Date.now`. Each reading must be an event time `record()` accepts (1970..9999 UTC). */
  now?: () => number;
}

function tokens(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new OutboxError('invalid', field, `must be a whole number >= 0, got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

export class Run {
  /** The `chat_message_started` event: record it with the run's first write. */
  readonly started: OutboxEvent;
  private readonly attr: Attribution;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly agentId: string | null;
  private readonly mode: string | null;
  private readonly isResume: boolean;
  private modelId: string | null;
  private modelTitle: string | null;
  private usage: { input: number; output: number; total: number } | null = null;
  private endedAs: 'completed' | 'aborted' | 'failed' | null = null;

  constructor(context: RunContext, start: RunStart = {}, options: RunOptions = {}) {
    this.attr = attribution(context);
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    const s = start ?? {};
    this.agentId = optionalString(s.agentId, 'start.agentId');
    this.mode = optionalString(s.mode, 'start.mode');
    if (s.isResume !== undefined && typeof s.isResume !== 'boolean')
      throw new OutboxError('invalid', 'start.isResume', `must be a boolean, got ${typeof s.isResume}`);
    this.isResume = s.isResume ?? false;
    this.modelId = optionalString(s.modelId, 'start.modelId');
    this.modelTitle = optionalString(s.modelTitle, 'start.modelTitle');
    this.started = buildEvent(
      this.attr,
      'chat_message_started',
      { agent_id: this.agentId, mode: this.mode, credential_id: optionalString(s.credentialId, 'start.credentialId'), is_resume: this.isResume },
      new Date(this.startedAt),
      CLOCK,
    );
  }

  /** How the run ended, or null while it runs. */
  get ended(): 'completed' | 'aborted' | 'failed' | null {
    return this.endedAs;
  }

  /** Adds one model call's token usage (summed into the completed event) and remembers its model. */
  modelCall(call: ModelCall): void {
    const input = tokens(call.inputTokens, 'call.inputTokens') ?? 0;
    const output = tokens(call.outputTokens, 'call.outputTokens') ?? 0;
    const total = tokens(call.totalTokens, 'call.totalTokens') ?? input + output;
    const modelId = optionalString(call.modelId, 'call.modelId');
    const modelTitle = optionalString(call.modelTitle, 'call.modelTitle');
    const u = this.usage ?? { input: 0, output: 0, total: 0 };
    this.usage = { input: u.input + input, output: u.output + output, total: u.total + total };
    if (modelId !== null) this.modelId = modelId;
    if (modelTitle !== null) this.modelTitle = modelTitle;
  }

  /** A `tool_called` event for a tool this run executed. */
  toolCalled(call: ToolCall): OutboxEvent {
    return toolCalled(this.attr, call, checkTimestamp(new Date(this.now()), CLOCK));
  }

  /** An application event with this run's attribution. */
  event(name: string, properties: Record<string, unknown> = {}): OutboxEvent {
    return attributedEvent(this.attr, name, properties);
  }

  /** Ends the run as `as` at the clock's time, which is checked first: a clock that fails leaves the run running. */
  private end(as: 'completed' | 'aborted' | 'failed'): { at: Date; duration: number } {
    if (this.endedAs !== null) throw new OutboxError('run_ended', 'run', `already ended as ${this.endedAs}; a run ends exactly once`);
    const at = checkTimestamp(new Date(this.now()), CLOCK);
    const duration = checkDuration(Math.max(0, at.getTime() - this.startedAt), 'run.duration');
    this.endedAs = as;
    return { at, duration };
  }

  /** The run finished normally: `chat_message_completed`. */
  complete(completion: RunCompletion = {}): OutboxEvent {
    const c = completion ?? {};
    const finishReason = optionalString(c.finishReason, 'completion.finishReason');
    const threadStatus = optionalString(c.threadStatus, 'completion.threadStatus');
    const modelId = optionalString(c.modelId, 'completion.modelId') ?? this.modelId;
    const modelTitle = optionalString(c.modelTitle, 'completion.modelTitle') ?? this.modelTitle;
    const { at, duration } = this.end('completed');
    return buildEvent(
      this.attr,
      'chat_message_completed',
      {
        agent_id: this.agentId,
        model_id: modelId,
        model_title: modelTitle,
        mode: this.mode,
        duration_ms: duration,
        finish_reason: finishReason,
        thread_status: threadStatus,
        input_tokens: this.usage?.input ?? null,
        output_tokens: this.usage?.output ?? null,
        total_tokens: this.usage?.total ?? null,
        is_resume: this.isResume,
      },
      at,
    );
  }

  /**
   * The run was aborted; pass what the abort signal carried (`signal.reason`). Returns `chat_message_aborted`,
   * or `null` when a person cancelled their own run (their client already sent `chat_message_stopped`).
   * `record()` skips `null`, so `record(tx, run.abort(signal.reason))` is always right.
   */
  abort(reason: unknown): OutboxEvent | null {
    const mapped = abortReason(reason);
    const { at, duration } = this.end('aborted');
    if (!emitsAbortEvent(mapped, this.attr.properties.is_automation)) return null;
    return buildEvent(
      this.attr,
      'chat_message_aborted',
      { agent_id: this.agentId, model_id: this.modelId, mode: this.mode, duration_ms: duration, is_resume: this.isResume, abort_reason: mapped },
      at,
    );
  }

  /** The run failed with `error`: `chat_message_failed`, with its category and redacted, cut message. */
  fail(error: unknown): OutboxEvent {
    const { at, duration } = this.end('failed');
    return buildEvent(
      this.attr,
      'chat_message_failed',
      {
        agent_id: this.agentId,
        model_id: this.modelId,
        mode: this.mode,
        duration_ms: duration,
        is_resume: this.isResume,
        error_category: errorCategory(error),
        error_message: errorMessage(error),
      },
      at,
    );
  }
}

/**
 * Starts tracking a chat run. Checks the context (throws `OutboxError` naming the field) and returns the
 * tracker; `run.started` is the `chat_message_started` event.
 *
 * @example
 * const run = startRun(context, { agentId: 'agent_1', mode: 'chat' });
 * await record(tx, run.started);
 * run.modelCall({ modelId: 'claude-sonnet', inputTokens: 1200, outputTokens: 300 });
 * await record(tx, run.complete({ finishReason: 'stop', threadStatus: 'completed' }));
 */
export function startRun(context: RunContext, start: RunStart = {}, options: RunOptions = {}): Run {
  return new Run(context, start, options);
}
