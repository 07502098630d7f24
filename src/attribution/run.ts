/**
 * The run tracker: one chat run from start to its single end. It remembers the start time, sums token
 * usage over every model call, and ends the run as completed, aborted(reason) or failed(error), building
 * the one event the contract asks for (or none, for a person's own cancel). With `llmAnalytics` it also
 * builds the run's LLM analytics events (llm.ts): each model call's `$ai_generation`, each tool call's
 * `$ai_span` beside its `tool_called`, and the `$ai_trace` beside the end's event. Pure: it builds events,
 * `record(tx, ...)` writes them.
 */
import { OutboxError } from '../errors/errors.ts';
import type { OutboxEvent } from '../record/event.ts';
import { checkTimestamp } from '../record/limits.ts';
import { abortReason, emitsAbortEvent } from './abort.ts';
import { attribution, optionalString, type Attribution, type RunContext } from './context.ts';
import { errorCategory, errorMessage } from './error-category.ts';
import { attributedEvent, buildEvent, checkDuration, toolCalled, type ToolCall } from './events.ts';
import { count as tokens, generationDetails, type LlmAnalyticsOptions, llmAnalyticsOption, LlmTrace, type ModelCallDetails } from './llm.ts';

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

/**
 * One model call. The token counts are summed into `chat_message_completed`; the rest is for LLM analytics
 * (docs/attribution.md, "LLM analytics"), checked always, sent only when the run has it on.
 */
export interface ModelCall extends ModelCallDetails {
  /** The model; a call without one used the last model named in the run. */
  modelId?: string | null;
  modelTitle?: string | null;
  /** Tokens as the provider reports them (PostHog's cost knows which providers count cached tokens in them). */
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
  /**
   * LLM analytics: `$ai_generation`, `$ai_span` and `$ai_trace` events beside the run's own (docs/attribution.md,
   * "LLM analytics"). Default off. To have it on every run, keep one options object and pass it to every `startRun`.
   */
  llmAnalytics?: boolean | LlmAnalyticsOptions;
}

/**
 * What a step of a run returns: its product event (`E`) alone when LLM analytics is off (`L` false), the list of
 * it and its `$ai_*` event when on. `record(tx, ...)` takes either.
 */
export type RunEvents<L extends boolean, E extends OutboxEvent | null> = L extends true ? OutboxEvent[] : E;
/** What `modelCall` returns: its `$ai_generation` with LLM analytics on, else `null` (which `record()` skips). */
export type Generation<L extends boolean> = L extends true ? OutboxEvent : null;

/** A run tracker; `L` says whether LLM analytics is on (`startRun` infers it from the options). */
export class Run<L extends boolean = boolean> {
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
  private provider: string | null = null;
  private usage: { input: number; output: number; total: number } | null = null;
  private endedAs: 'completed' | 'aborted' | 'failed' | null = null;
  /** The run's LLM analytics trace, when it has them on. */
  private readonly trace: LlmTrace | null;

  constructor(context: RunContext, start: RunStart = {}, options: RunOptions = {}) {
    this.attr = attribution(context);
    this.now = options.now ?? Date.now;
    const llm = llmAnalyticsOption(options.llmAnalytics);
    this.trace = llm ? new LlmTrace(this.attr, llm) : null;
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

  /**
   * Adds one model call's token usage (summed into the completed event) and remembers its model. Returns its
   * `$ai_generation` with LLM analytics on (which needs the model: named by this call or an earlier one), else
   * `null`. Everything is checked first: a call that throws changes nothing.
   */
  modelCall(call: ModelCall): Generation<L> {
    if (call === null || typeof call !== 'object') throw new OutboxError('required', 'call', 'is required');
    const input = tokens(call.inputTokens, 'call.inputTokens') ?? 0;
    const output = tokens(call.outputTokens, 'call.outputTokens') ?? 0;
    const total = tokens(call.totalTokens, 'call.totalTokens') ?? input + output;
    const modelId = optionalString(call.modelId, 'call.modelId');
    const modelTitle = optionalString(call.modelTitle, 'call.modelTitle');
    const provider = optionalString(call.provider, 'call.provider');
    const details = generationDetails(call, input, output, this.trace?.content ?? false);
    let generation: OutboxEvent | null = null;
    if (this.trace) {
      const model = modelId ?? this.modelId;
      if (model === null)
        throw new OutboxError('required', 'call.modelId', 'LLM analytics needs the model of every call (or of an earlier call of the run, or of its start)');
      generation = this.trace.generation(model, provider ?? this.provider, details, checkTimestamp(new Date(this.now()), CLOCK));
    }
    const u = this.usage ?? { input: 0, output: 0, total: 0 };
    this.usage = { input: u.input + input, output: u.output + output, total: u.total + total };
    if (modelId !== null) this.modelId = modelId;
    if (modelTitle !== null) this.modelTitle = modelTitle;
    if (provider !== null) this.provider = provider;
    return generation as Generation<L>;
  }

  /** A `tool_called` event for a tool this run executed; with LLM analytics, and its `$ai_span`. */
  toolCalled(call: ToolCall): RunEvents<L, OutboxEvent> {
    const event = toolCalled(this.attr, call, checkTimestamp(new Date(this.now()), CLOCK));
    return this.withAi(event, () => this.trace!.span(event, 'error' in call ? { error: call.error } : null));
  }

  /** `event` alone without LLM analytics; with it, the list of `event` (unless null) and the `$ai_*` event. */
  private withAi<E extends OutboxEvent | null>(event: E, ai: () => OutboxEvent): RunEvents<L, E> {
    const out = this.trace ? [...(event === null ? [] : [event]), ai()] : event;
    return out as RunEvents<L, E>;
  }

  /** The run's `$ai_trace`, at its end. */
  private traceEnd(at: Date, duration: number, failure: { error: unknown } | null): OutboxEvent {
    return this.trace!.end(this.agentId, duration, failure, at);
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

  /** The run finished normally: `chat_message_completed` (and `$ai_trace` with LLM analytics). */
  complete(completion: RunCompletion = {}): RunEvents<L, OutboxEvent> {
    const c = completion ?? {};
    const finishReason = optionalString(c.finishReason, 'completion.finishReason');
    const threadStatus = optionalString(c.threadStatus, 'completion.threadStatus');
    const modelId = optionalString(c.modelId, 'completion.modelId') ?? this.modelId;
    const modelTitle = optionalString(c.modelTitle, 'completion.modelTitle') ?? this.modelTitle;
    const { at, duration } = this.end('completed');
    const event = buildEvent(
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
    return this.withAi(event, () => this.traceEnd(at, duration, null));
  }

  /**
   * The run was aborted; pass what the abort signal carried (`signal.reason`). Returns `chat_message_aborted`,
   * or `null` when a person cancelled their own run (their client already sent `chat_message_stopped`).
   * `record()` skips `null`, so `record(tx, run.abort(signal.reason))` is always right. With LLM analytics, the
   * list of that event (if any) and the run's `$ai_trace`: a stopped run still closes its trace.
   */
  abort(reason: unknown): RunEvents<L, OutboxEvent | null> {
    const mapped = abortReason(reason);
    const { at, duration } = this.end('aborted');
    const event = emitsAbortEvent(mapped, this.attr.properties.is_automation)
      ? buildEvent(
          this.attr,
          'chat_message_aborted',
          { agent_id: this.agentId, model_id: this.modelId, mode: this.mode, duration_ms: duration, is_resume: this.isResume, abort_reason: mapped },
          at,
        )
      : null;
    return this.withAi(event, () => this.traceEnd(at, duration, null));
  }

  /** The run failed with `error`: `chat_message_failed`, with its category and redacted, cut message (and `$ai_trace`, an error). */
  fail(error: unknown): RunEvents<L, OutboxEvent> {
    const { at, duration } = this.end('failed');
    const event = buildEvent(
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
    return this.withAi(event, () => this.traceEnd(at, duration, { error }));
  }
}

/** Run options with LLM analytics on. */
type LlmOn = RunOptions & { llmAnalytics: true | LlmAnalyticsOptions };
/** Run options with LLM analytics off. */
type LlmOff = RunOptions & { llmAnalytics?: false | null };

/**
 * Starts tracking a chat run. Checks the context (throws `OutboxError` naming the field) and returns the
 * tracker; `run.started` is the `chat_message_started` event. With `{ llmAnalytics: true }` (a literal, or an
 * options object declared `as const`), the tracker's type says that its steps return lists of events.
 *
 * @example
 * const run = startRun(context, { agentId: 'agent_1', mode: 'chat' });
 * await record(tx, run.started);
 * await record(tx, run.modelCall({ modelId: 'claude-sonnet', inputTokens: 1200, outputTokens: 300 })); // null: nothing written
 * await record(tx, run.complete({ finishReason: 'stop', threadStatus: 'completed' }));
 */
export function startRun(context: RunContext, start?: RunStart, options?: LlmOff): Run<false>;
export function startRun(context: RunContext, start: RunStart | undefined, options: LlmOn): Run<true>;
export function startRun(context: RunContext, start?: RunStart, options?: RunOptions): Run;
export function startRun(context: RunContext, start: RunStart = {}, options: RunOptions = {}): Run {
  return new Run(context, start, options);
}
