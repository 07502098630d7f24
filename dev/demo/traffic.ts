/**
 * Plays the demo plan against a database through the package's public API only (`startRun`,
 * `attributedEvent`, `record`), each write in a real transaction together with an application row, the
 * way a handler does. Threads run side by side, each thread's runs in order. Every run has LLM analytics on
 * (`DEMO_RUN_OPTIONS`, the one options object an application keeps and passes to every run): a model call's
 * `$ai_generation` is recorded with the run's next write.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type postgres from 'postgres';
import { attributedEvent, type ModelCall, type OutboxEvent, record, type Run, type RunContext, type RunOptions, startRun } from '../../src/index.ts';
import { insertMessage, saveAutomation, type MessageRow } from './app.ts';
import { DEMO_PLAN, type DemoPlan } from './plan.ts';
import type { PlannedEnd, PlannedModelCall, PlannedRun } from './plan-types.ts';

/** Threads played at once. */
const LANES = 4;

/** The demo's runs all have LLM analytics on (docs/attribution.md, "LLM analytics"). */
export const DEMO_RUN_OPTIONS = { llmAnalytics: true } satisfies RunOptions;

export interface CommittedEvent {
  uuid: string;
  event: string;
  /** Date.now() right after the transaction that wrote it committed. */
  committedAt: number;
}

export interface TrafficResult {
  /** Every event written by a committed transaction, in commit order. */
  committed: CommittedEvent[];
  /** Committed transactions. */
  transactions: number;
  /** uuids the rolled-back transactions had written: they must never reach PostHog. */
  rolledBack: string[];
  durationMs: number;
}

export interface TrafficOptions {
  plan?: DemoPlan;
  /** Outbox schema passed to `record()`. Default: the package's default. */
  schema?: string;
  /** Stops the traffic between writes (the transaction in progress completes). */
  signal?: AbortSignal;
}

/** Plays the plan; resolves when every write has committed (or `signal` stopped it). */
export async function simulateTraffic(sql: postgres.Sql, options: TrafficOptions = {}): Promise<TrafficResult> {
  const started = Date.now();
  const player = new TrafficPlayer(sql, options);
  await player.createAutomations();
  await player.rollBackHandlers();
  await player.playThreads();
  return { ...player.result, durationMs: Date.now() - started };
}

class TrafficPlayer {
  readonly result: Omit<TrafficResult, 'durationMs'> = { committed: [], transactions: 0, rolledBack: [] };
  readonly sql: postgres.Sql;
  readonly #plan: DemoPlan;
  readonly #recordOptions: { schema?: string };
  readonly #signal: AbortSignal | undefined;

  constructor(sql: postgres.Sql, options: TrafficOptions) {
    this.sql = sql;
    this.#plan = options.plan ?? DEMO_PLAN;
    this.#recordOptions = options.schema ? { schema: options.schema } : {};
    this.#signal = options.signal;
  }

  get #stopped(): boolean {
    return this.#signal?.aborted ?? false;
  }

  /** Owners create their automations: a row in `automations` and the event `automation_created`. */
  async createAutomations(): Promise<void> {
    for (const automation of this.#plan.automations) {
      if (this.#stopped) return;
      const context = this.#userContext(automation.ownerUserId);
      const event = attributedEvent(context, 'automation_created', { created_automation_id: automation.id, trigger_type: automation.trigger.type });
      const uuids = await this.sql.begin(async (tx) => {
        await saveAutomation(tx, automation);
        return record(tx, event, this.#recordOptions);
      });
      this.#committed(uuids, [event]);
    }
  }

  /** Handlers that fail after recording: the rollback takes the event with it. */
  async rollBackHandlers(): Promise<void> {
    for (const { user, thread } of this.#plan.rolledBack) {
      if (this.#stopped) return;
      const context = { ...this.#userContext(user), threadId: thread };
      let written: string[] = [];
      await this.sql
        .begin(async (tx) => {
          await insertMessage(tx, { thread, author: user, kind: 'user', body: 'hello?' });
          written = await record(tx, attributedEvent(context, 'chat_started', { source: 'sidebar' }), this.#recordOptions);
          throw new Error('simulated handler failure after record(): the message was too long');
        })
        .catch(() => undefined);
      this.result.rolledBack.push(...written);
    }
  }

  /** Threads side by side, each thread's runs in order; every lane settles before this returns. */
  async playThreads(): Promise<void> {
    const threads = [...Map.groupBy(this.#plan.runs, (run) => run.thread).values()];
    let next = 0;
    const lane = async () => {
      while (next < threads.length && !this.#stopped) {
        for (const run of threads[next++]!) {
          if (this.#stopped) return;
          await this.#playRun(run);
        }
      }
    };
    const lanes = await Promise.allSettled(Array.from({ length: LANES }, lane));
    const failed = lanes.find((l): l is PromiseRejectedResult => l.status === 'rejected');
    if (failed && !this.#stopped) throw failed.reason;
  }

  async #playRun(run: PlannedRun): Promise<void> {
    const { context, author } = this.#runContext(run);
    const tracker = startRun(context, { agentId: run.agentId, mode: run.mode, credentialId: `cred_${run.agentId}`, isResume: false }, DEMO_RUN_OPTIONS);
    const first = run.newThread ? [attributedEvent(context, 'chat_started', { source: 'composer' }), tracker.started] : [tracker.started];
    await this.#write({ thread: run.thread, author, kind: 'automation' in run.actor ? 'trigger' : 'user', body: run.label }, first);
    const generations = await this.#playSteps(run, tracker, author);
    await this.#write(endMessage(run), [...generations, ...endEvents(run.end, tracker)]);
    if (run.share) {
      await this.#write({ thread: run.thread, author, kind: 'share', body: 'shared with the organization' }, [
        attributedEvent(context, 'thread_shared', { visibility: 'organization' }),
      ]);
    }
  }

  /**
   * Model calls stream and report usage; tool calls are written as they finish, with the generations of the
   * model calls before them. Returns the generations not written yet (the run's end writes them).
   */
  async #playSteps(run: PlannedRun, tracker: Run<true>, author: string): Promise<OutboxEvent[]> {
    const pause = (ms: number) => sleep(ms, undefined, this.#signal ? { signal: this.#signal } : {});
    const generations: OutboxEvent[] = [];
    for (let i = 0; i < Math.max(run.modelCalls.length, run.tools.length); i++) {
      const call = run.modelCalls[i];
      if (call) {
        await pause(call.latencyMs);
        generations.push(tracker.modelCall(this.#modelCall(call)));
      }
      const tool = run.tools[i];
      if (tool) {
        await pause(tool.latencyMs);
        const base = {
          toolName: tool.name,
          toolSafeName: tool.safeName ?? null,
          source: tool.source,
          annotations: tool.annotations ?? null,
          latencyMs: tool.latencyMs,
        };
        const events =
          tool.outcome === 'throws'
            ? tracker.toolCalled({ ...base, error: new Error(`${tool.name}: connect ECONNREFUSED 10.0.3.7:5432`) })
            : tracker.toolCalled({ ...base, result: { content: [{ type: 'text', text: 'ok' }], isError: tool.outcome === 'result-error' } });
        await this.#write({ thread: run.thread, author, kind: 'tool', body: `${tool.name}: ${tool.outcome}` }, [...generations.splice(0), ...events]);
      }
    }
    return generations;
  }

  /** What a handler knows of a model call: usage, latency, failure, and its cost when the plan prices the model. */
  #modelCall(call: PlannedModelCall): ModelCall {
    const price = this.#plan.prices[call.modelId];
    const cost = price && {
      inputCostUsd: (call.inputTokens * price.inputPerMTok) / 1e6,
      outputCostUsd: (call.outputTokens * price.outputPerMTok) / 1e6,
    };
    return {
      modelId: call.modelId,
      modelTitle: call.modelTitle,
      provider: call.provider,
      inputTokens: call.inputTokens,
      outputTokens: call.outputTokens,
      latencyMs: call.latencyMs,
      ...(call.error ? { error: errorOf(call.error) } : {}),
      ...(cost ? { ...cost, totalCostUsd: cost.inputCostUsd + cost.outputCostUsd } : {}),
    };
  }

  /** One handler transaction: an application row and its events, committed together. */
  async #write(row: MessageRow, events: (OutboxEvent | null)[]): Promise<void> {
    const uuids = await this.sql.begin(async (tx) => {
      await insertMessage(tx, row);
      return record(tx, events, this.#recordOptions);
    });
    this.#committed(
      uuids,
      events.filter((e): e is OutboxEvent => e !== null),
    );
  }

  #committed(uuids: string[], events: OutboxEvent[]): void {
    const committedAt = Date.now();
    this.result.transactions++;
    for (const [i, uuid] of uuids.entries()) this.result.committed.push({ uuid, event: events[i]!.event, committedAt });
  }

  #find<T extends { id: string }>(list: readonly T[], id: string, what: string): T {
    const found = list.find((item) => item.id === id);
    if (!found) throw new Error(`demo plan: unknown ${what} ${JSON.stringify(id)}`);
    return found;
  }

  #organizationContext(id: string): RunContext['organization'] {
    const o = this.#find(this.#plan.organizations, id, 'organization');
    return { id: o.id, name: o.name ?? null, slug: o.slug ?? null };
  }

  #userContext(id: string): RunContext {
    const u = this.#find(this.#plan.users, id, 'user');
    return { organization: this.#organizationContext(u.organizationId), user: { id: u.id, email: u.email ?? null, name: u.name ?? null } };
  }

  /** A person's run, or an automation's: it knows its owner's id, not the owner's email or name. */
  #runContext(run: PlannedRun): { context: RunContext; author: string } {
    const where = { virtualMcpName: run.virtualMcp, threadId: run.thread, userAgent: run.userAgent };
    if (!('automation' in run.actor)) return { context: { ...this.#userContext(run.actor.user), ...where }, author: run.actor.user };
    const automation = this.#find(this.#plan.automations, run.actor.automation, 'automation');
    const context: RunContext = {
      organization: this.#organizationContext(automation.organizationId),
      user: { id: automation.ownerUserId },
      automation: { id: automation.id, name: automation.name, triggerId: automation.trigger.id },
      ...where,
    };
    return { context, author: `automation_${automation.id}` };
  }
}

/** The run's end: its event (none for a person's own cancel: their client reports it) and its `$ai_trace`. */
function endEvents(end: PlannedEnd, tracker: Run<true>): OutboxEvent[] {
  if (end.kind === 'complete') return tracker.complete({ finishReason: end.finishReason, threadStatus: end.threadStatus });
  if (end.kind === 'abort') {
    const controller = new AbortController();
    if (end.reason === null) controller.abort();
    else controller.abort(end.reason);
    return tracker.abort(controller.signal.reason);
  }
  return tracker.fail(errorOf(end));
}

function errorOf(planned: { message: string; name?: string }): Error {
  const error = new Error(planned.message);
  if (planned.name) error.name = planned.name;
  return error;
}

function endMessage(run: PlannedRun): MessageRow {
  const body = run.end.kind === 'complete' ? 'done' : run.end.kind === 'abort' ? `aborted: ${String(run.end.reason)}` : 'failed';
  return { thread: run.thread, author: run.agentId, kind: run.end.kind === 'complete' ? 'assistant' : 'status', body };
}
