/**
 * LLM analytics as PostHog sees it (docs/attribution.md, "LLM analytics"): the run tracker with `llmAnalytics` ->
 * record() -> a real worker -> posthog-node -> the capture server. A person's chat with two model calls and a tool
 * call, and an automation run whose model call errs and whose run fails, arrive as 3 generations, 1 span and 2
 * traces through the AI endpoint, with the product events exactly as without LLM analytics. Content, when a run
 * opts in, goes the same way up to the AI endpoint's limit; record() refuses beyond it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer, type ReceivedEvent } from '../dev/capture-server.ts';
import { type OutboxEvent, OutboxError, record, type RunContext, type RunOptions, startRun } from '../src/index.ts';
import { MAX_AI_EVENT_BYTES } from '../src/record/validate.ts';
import { startWorker, type OutboxWorker } from '../worker/index.ts';
import type { TestDatabase } from './support/db.ts';
import { createWorkerDatabase, outboxCount, outboxEmpty } from './support/worker.ts';

const ada: RunContext = {
  organization: { id: 'org_acme', name: 'Acme', slug: 'acme' },
  user: { id: 'user_ada', email: 'ada@example.com', name: 'Ada' },
  virtualMcpName: 'research',
  threadId: 'thread_ada',
  userAgent: 'acme-desktop/2.0',
};
const digest: RunContext = {
  organization: { id: 'org_acme' },
  user: { id: 'user_ada' }, // the owner
  automation: { id: 'auto_digest', name: 'Nightly digest', triggerId: 'trg_cron' },
  virtualMcpName: 'digest',
  threadId: 'thread_digest',
};
const KEY = 'sk-live-0123456789abcdef';
const PROMPT = [{ role: 'user', content: 'summarise the open issues' }];

/**
 * The two runs, each step's events as its handler records them (one record() call per step), on a clock that
 * starts at the same time for every playing: played with and without LLM analytics, the product events must match.
 */
function play(options: RunOptions): (OutboxEvent | OutboxEvent[] | null)[] {
  let t = Date.parse('2026-11-26T09:00:00.000Z');
  const now = () => t;
  const chat = startRun(ada, { agentId: 'agent_assistant', mode: 'chat', credentialId: 'cred_1' }, { ...options, now });
  const steps: (OutboxEvent | OutboxEvent[] | null)[] = [chat.started];
  t += 1500;
  steps.push(
    chat.modelCall({
      modelId: 'claude-sonnet-4',
      modelTitle: 'Claude Sonnet 4',
      provider: 'anthropic',
      inputTokens: 1000,
      outputTokens: 100,
      latencyMs: 1500,
      timeToFirstTokenMs: 400,
      input: PROMPT, // no content without { content: true }
      output: [{ role: 'assistant', content: 'calling web.search' }],
    }),
  );
  t += 85;
  steps.push(chat.toolCalled({ toolName: 'web.search', source: 'mcp', annotations: { readOnlyHint: true }, latencyMs: 85, result: { content: [] } }));
  t += 900;
  steps.push(chat.modelCall({ inputTokens: 1200, outputTokens: 250, cacheReadInputTokens: 900, latencyMs: 900, httpStatus: 200, totalCostUsd: 0.0071 }));
  t += 15;
  steps.push(chat.complete({ finishReason: 'stop', threadStatus: 'completed' }));

  const auto = startRun(digest, { agentId: 'agent_digest', mode: 'agent', modelId: 'gpt-4.1' }, { ...options, now });
  steps.push(auto.started);
  t += 300;
  const error = new Error(`429 Too Many Requests for key ${KEY}`);
  steps.push(auto.modelCall({ provider: 'openai', inputTokens: 4100, latencyMs: 300, httpStatus: 429, error }));
  t += 5;
  steps.push(auto.fail(error));
  return steps;
}

let db: TestDatabase;
let capture: CaptureServer;
let worker: OutboxWorker;
let received: ReceivedEvent[];
/** What the same handlers record without LLM analytics. */
const without = play({})
  .flat()
  .filter((e): e is OutboxEvent => e !== null);
let written: { uuid: string; event: OutboxEvent }[];

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_llm' });
  written = [];
  for (const step of play({ llmAnalytics: true })) {
    const events = [step].flat().filter((e): e is OutboxEvent => e !== null);
    const uuids = await db.sql.begin((tx) => record(tx, step));
    written.push(...uuids.map((uuid, i) => ({ uuid, event: events[i]! })));
  }
  worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_llm', host: capture.url }, backoff: { baseMs: 100, maxMs: 1000 } });
  await outboxEmpty(db.sql, { what: 'the outbox to empty' });
  // the 12 events, then the identifies of Ada, the persona and the organization
  await capture.waitFor(written.length + 3, { timeoutMs: 20_000 });
  received = [...capture.events];
});

afterAll(async () => {
  await worker?.stop(5_000);
  await capture?.close();
  await db?.drop();
});

const named = (name: string) => received.filter((e) => e.event === name);
const ai = () => received.filter((e) => e.event.startsWith('$ai_'));

describe('what PostHog receives from two runs with LLM analytics', () => {
  it('3 generations, 1 span and 2 traces, each once, all through the AI endpoint; the other events through /batch/', () => {
    expect(ai().map((e) => e.event)).toEqual(
      expect.arrayContaining(['$ai_generation', '$ai_generation', '$ai_generation', '$ai_span', '$ai_trace', '$ai_trace']),
    );
    expect(ai()).toHaveLength(6);
    expect(new Set(received.map((e) => e.uuid)).size).toBe(received.length);
    for (const e of received) expect(e.endpoint, e.event).toBe(e.event.startsWith('$ai_') ? 'ai' : 'v0');
    expect(received.map((e) => e.uuid).filter((u) => written.some((w) => w.uuid === u))).toHaveLength(written.length);
  });

  it("each run's events share its trace id; generations and the span are children of the trace; the thread is the session", () => {
    const byDistinctId = Map.groupBy(ai(), (e) => e.distinct_id);
    expect([...byDistinctId.keys()].sort()).toEqual(['automation_auto_digest', 'user_ada']);
    const traces = new Set<unknown>();
    for (const [distinctId, events] of byDistinctId) {
      const trace = events[0]!.properties.$ai_trace_id;
      expect(trace).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      traces.add(trace);
      const session = distinctId === 'user_ada' ? 'thread_ada' : 'thread_digest';
      for (const e of events) {
        expect(e.properties).toMatchObject({ $ai_trace_id: trace, $ai_session_id: session });
        if (e.event !== '$ai_trace') expect(e.properties).toMatchObject({ $ai_parent_id: trace, $ai_span_id: expect.any(String) });
      }
    }
    expect(traces.size).toBe(2);
  });

  it('generations: model, provider, tokens, latencies in seconds, errors redacted; no content', () => {
    const props = named('$ai_generation').map((e) => e.properties);
    expect(props.map((p) => [p.$ai_model, p.$ai_provider, p.$ai_input_tokens, p.$ai_output_tokens, p.$ai_latency, p.$ai_is_error]).sort()).toEqual([
      ['claude-sonnet-4', 'anthropic', 1000, 100, 1.5, false],
      ['claude-sonnet-4', 'anthropic', 1200, 250, 0.9, false],
      ['gpt-4.1', 'openai', 4100, 0, 0.3, true],
    ]);
    expect(props.find((p) => p.$ai_latency === 1.5)).toMatchObject({ $ai_time_to_first_token: 0.4 });
    expect(props.find((p) => p.$ai_latency === 0.9)).toMatchObject({ $ai_cache_read_input_tokens: 900, $ai_http_status: 200, $ai_total_cost_usd: 0.0071 });
    const failed = props.find((p) => p.$ai_is_error)!;
    expect(failed).toMatchObject({ $ai_http_status: 429, $ai_error: '429 Too Many Requests for key [redacted]' });
    for (const p of props) {
      expect(p).not.toHaveProperty('$ai_input');
      expect(p).not.toHaveProperty('$ai_output_choices');
    }
    const wire = JSON.stringify(received);
    expect(wire).not.toContain(KEY);
    expect(wire).not.toContain('summarise the open issues');
  });

  it('the span: the tool, its latency in seconds; the traces: the run duration, an error exactly when the run failed', () => {
    expect(named('$ai_span').map((e) => e.properties)).toEqual([
      expect.objectContaining({ $ai_span_name: 'web.search', $ai_latency: 0.085, $ai_is_error: false }),
    ]);
    const traces = named('$ai_trace').map((e) => [e.distinct_id, e.properties.$ai_span_name, e.properties.$ai_latency, e.properties.$ai_is_error]);
    expect(traces.sort()).toEqual([
      ['automation_auto_digest', 'agent_digest', 0.305, true],
      ['user_ada', 'agent_assistant', 2.5, false],
    ]);
    expect(named('$ai_trace').find((e) => e.properties.$ai_is_error)!.properties.$ai_error).toBe('429 Too Many Requests for key [redacted]');
  });

  it("every $ai_ event has the run's attribution: the user, or automation_<id> with the owner in user_id; $groups.organization", () => {
    for (const e of ai()) {
      const automation = e.distinct_id === 'automation_auto_digest';
      expect(e.properties).toMatchObject({
        $groups: { organization: 'org_acme' },
        organization_id: 'org_acme',
        user_id: 'user_ada',
        is_automation: automation,
        automation_id: automation ? 'auto_digest' : null,
        automation_name: automation ? 'Nightly digest' : null,
        trigger_id: automation ? 'trg_cron' : null,
        user_agent: automation ? null : 'acme-desktop/2.0',
        virtual_mcp_name: automation ? 'digest' : 'research',
        thread_id: automation ? 'thread_digest' : 'thread_ada',
      });
      expect(e.properties).not.toHaveProperty('$set');
    }
  });

  it('the product events are exactly those the same handlers send without LLM analytics', () => {
    const product = written.filter((w) => !w.event.event.startsWith('$ai_'));
    expect(product.map((w) => w.event.event)).toEqual(without.map((e) => e.event));
    product.forEach(({ uuid }, i) => {
      const got = received.find((e) => e.uuid === uuid)!;
      const expected = without[i]!;
      expect([got.event, got.distinct_id, got.timestamp]).toEqual([expected.event, expected.distinctId, expected.timestamp!.toISOString()]);
      const own = Object.fromEntries(Object.keys(expected.properties).map((key) => [key, got.properties[key]]));
      expect(own).toEqual(expected.properties);
      // what else arrived is posthog-node's own ($lib, $is_server, ...), nothing of LLM analytics
      const extra = Object.keys(got.properties).filter((key) => !(key in expected.properties));
      expect(extra.filter((key) => !key.startsWith('$') || key.startsWith('$ai_'))).toEqual([]);
    });
    expect(named('chat_message_completed')[0]!.properties).toMatchObject({ input_tokens: 2200, output_tokens: 350, total_tokens: 2550, duration_ms: 2500 });
  });

  it('the same identifies as without LLM analytics: Ada, the persona, the organization, once each', () => {
    expect(
      named('$identify')
        .map((e) => e.distinct_id)
        .sort(),
    ).toEqual(['automation_auto_digest', 'user_ada']);
    expect(named('$groupidentify').map((e) => e.properties.$group_key)).toEqual(['org_acme']);
  });
});

describe('content, when a run opts in: up to the AI endpoint limit', () => {
  it('a generation with ~3 MB of content arrives once through /i/v0/ai/batch/, redacted; one over 8 MiB is refused by record(), nothing written', async () => {
    const run = startRun(ada, { modelId: 'claude-sonnet-4' }, { llmAnalytics: { content: true } });
    const paragraph = `The issue tracker lists the open work for the quarter; token=${KEY} appears once here. `;
    const long = paragraph.repeat(Math.ceil(3_000_000 / paragraph.length));
    const generation = run.modelCall({
      provider: 'anthropic',
      inputTokens: 700_000,
      outputTokens: 900,
      input: PROMPT,
      output: [{ role: 'assistant', content: long }],
    });
    const [uuid] = await db.sql.begin((tx) => record(tx, generation));
    await outboxEmpty(db.sql, { what: 'the large generation to be delivered' });
    await capture.waitFor((events) => events.some((e) => e.uuid === uuid), { timeoutMs: 20_000 });
    const copies = capture.events.filter((e) => e.uuid === uuid);
    expect(copies.map((e) => e.endpoint)).toEqual(['ai']);
    const choices = copies[0]!.properties.$ai_output_choices as { content: string }[];
    expect(choices[0]!.content).toBe(long.replaceAll(KEY, '[redacted]'));
    expect(choices[0]!.content.length).toBeGreaterThan(2_500_000); // over /batch/'s 1 MB
    expect(copies[0]!.properties.$ai_input).toEqual(PROMPT);

    const before = await outboxCount(db.sql);
    const tooBig = run.modelCall({ output: 'x'.repeat(9 * 1024 * 1024) });
    const error = await db.sql
      .begin((tx) => record(tx, [run.toolCalled({ toolName: 't', source: 'builtin', latencyMs: 1, result: {} }), tooBig].flat()))
      .catch((e) => e);
    expect(error).toBeInstanceOf(OutboxError);
    expect(error).toMatchObject({ code: 'too_large', field: 'events[2].properties' });
    expect((error as Error).message).toContain(`PostHog's AI endpoint accepts at most ${MAX_AI_EVENT_BYTES} per $ai_* event`);
    expect(await outboxCount(db.sql)).toBe(before);
  });
});
