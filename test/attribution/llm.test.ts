// docs/attribution.md: "LLM analytics" (every property of $ai_generation, $ai_span and $ai_trace, opt-in, content,
// checks) as the run tracker builds them. Pure; test/llm-contract.test.ts follows them to the capture endpoint.
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  ATTRIBUTION_KEYS,
  type ModelCall,
  type OutboxEvent,
  OutboxError,
  type Run,
  type RunContext,
  type RunOptions,
  startRun,
  type ToolCall,
} from '../../src/index.ts';

const ada: RunContext = {
  organization: { id: 'org_1', name: 'Acme', slug: 'acme' },
  user: { id: 'user_1', email: 'ada@example.com', name: 'Ada' },
  virtualMcpName: 'vmcp',
  threadId: 'thread_1',
  userAgent: 'ua/1',
};
const digest: RunContext = {
  organization: { id: 'org_1', name: 'Acme' },
  user: { id: 'owner_1' },
  automation: { id: 'auto_1', name: 'Digest', triggerId: 'trg_1' },
  threadId: 'thread_2',
};
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A clock the test moves by hand. */
function clock(start = 1_764_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    at: (ms: number) => new Date(start + ms),
  };
}

/** The properties an event adds to the run's attribution (every attribution key must be there). */
function own(event: OutboxEvent): Record<string, unknown> {
  const rest = { ...event.properties };
  for (const key of ATTRIBUTION_KEYS) {
    expect(rest, `attribution key ${key}`).toHaveProperty(key);
    delete rest[key];
  }
  return rest;
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const tool = { toolName: 'web.search', source: 'mcp', latencyMs: 1234.4 } as const;
const search: ToolCall = { ...tool, result: { content: [] } };

describe('opt-in per run', () => {
  it('off (the default): modelCall returns null, every other step the product event alone', () => {
    const run = startRun(ada);
    expect(run.modelCall({ modelId: 'm', inputTokens: 1 })).toBeNull();
    expect(run.toolCalled(search).event).toBe('tool_called');
    expect(run.complete().event).toBe('chat_message_completed');
    expect(startRun(ada, {}, { llmAnalytics: false }).fail(new Error('x')).event).toBe('chat_message_failed');
  });

  it('on: modelCall returns its $ai_generation, each other step the list of its product event and its $ai_ event', () => {
    const run = startRun(ada, { modelId: 'm' }, { llmAnalytics: true });
    expect(run.modelCall({}).event).toBe('$ai_generation');
    expect(run.toolCalled(search).map((e) => e.event)).toEqual(['tool_called', '$ai_span']);
    expect(run.complete().map((e) => e.event)).toEqual(['chat_message_completed', '$ai_trace']);
    expect(
      startRun(ada, {}, { llmAnalytics: {} })
        .fail(new Error('x'))
        .map((e) => e.event),
    ).toEqual(['chat_message_failed', '$ai_trace']);
  });

  it("a person's own stop closes the trace without a product event; an automation's cancel sends both", () => {
    expect(
      startRun(ada, {}, { llmAnalytics: true })
        .abort('cancelled')
        .map((e) => e.event),
    ).toEqual(['$ai_trace']);
    expect(
      startRun(digest, {}, { llmAnalytics: true })
        .abort('cancelled')
        .map((e) => e.event),
    ).toEqual(['chat_message_aborted', '$ai_trace']);
  });

  it('the types follow the options: a literal or an options object kept once for every run (satisfies RunOptions)', () => {
    const RUN_OPTIONS = { llmAnalytics: true } satisfies RunOptions;
    expectTypeOf(startRun(ada)).toEqualTypeOf<Run<false>>();
    expectTypeOf(startRun(ada, {}, { now: Date.now })).toEqualTypeOf<Run<false>>();
    expectTypeOf(startRun(ada, {}, RUN_OPTIONS)).toEqualTypeOf<Run<true>>();
    expectTypeOf(startRun(ada, {}, { ...RUN_OPTIONS, now: Date.now })).toEqualTypeOf<Run<true>>();
    expectTypeOf(startRun(ada, {}, { llmAnalytics: { content: true } })).toEqualTypeOf<Run<true>>();
    expectTypeOf(startRun(ada, {}, {} as RunOptions)).toEqualTypeOf<Run>();
    expectTypeOf(startRun(ada).modelCall({})).toEqualTypeOf<null>();
    expectTypeOf(startRun(ada).complete()).toEqualTypeOf<OutboxEvent>();
    expectTypeOf(startRun(ada).abort('x')).toEqualTypeOf<OutboxEvent | null>();
    expectTypeOf(startRun(ada, {}, RUN_OPTIONS).modelCall({ modelId: 'm' })).toEqualTypeOf<OutboxEvent>();
    expectTypeOf(startRun(ada, {}, RUN_OPTIONS).toolCalled(search)).toEqualTypeOf<OutboxEvent[]>();
    expectTypeOf(startRun(ada, {}, {} as RunOptions).complete()).toEqualTypeOf<OutboxEvent | OutboxEvent[]>();
  });

  it('with LLM analytics off, the product events are byte for byte what they were', () => {
    const play = (options: RunOptions) => {
      const c = clock();
      const run = startRun(ada, { agentId: 'a', mode: 'chat', modelId: 'm0' }, { ...options, now: c.now });
      const events: unknown[] = [run.started];
      c.advance(700);
      events.push(run.modelCall({ modelId: 'm', provider: 'anthropic', inputTokens: 10, outputTokens: 5, latencyMs: 700, cacheReadInputTokens: 3 }));
      events.push(run.toolCalled({ ...tool, error: new Error('down') }));
      events.push(run.modelCall({ inputTokens: 1, outputTokens: 2, error: new Error('429'), httpStatus: 429, input: [{ role: 'user', content: 'hi' }] }));
      c.advance(300);
      events.push(run.complete({ finishReason: 'stop' }));
      for (const [end, ctx] of [
        ['abort', digest],
        ['fail', ada],
      ] as const) {
        const other = startRun(ctx, {}, { ...options, now: c.now });
        events.push(end === 'abort' ? other.abort('timeout') : other.fail(new Error('boom sk-live-0123456789abcdef')));
      }
      const product = events.flat().filter((e): e is OutboxEvent => e !== null && !(e as OutboxEvent).event.startsWith('$ai_'));
      return JSON.stringify(product);
    };
    const before = play({});
    expect(JSON.parse(before).map((e: OutboxEvent) => e.event)).toEqual([
      'chat_message_started',
      'tool_called',
      'chat_message_completed',
      'chat_message_aborted',
      'chat_message_failed',
    ]);
    expect(play({ llmAnalytics: true })).toBe(before);
    expect(play({ llmAnalytics: { content: true } })).toBe(before);
  });

  it.each<[string, unknown, string]>([
    ['a number', 1, 'options.llmAnalytics'],
    ['a string', 'yes', 'options.llmAnalytics'],
    ['an array', [], 'options.llmAnalytics'],
    ['content not a boolean', { content: 'yes' }, 'options.llmAnalytics.content'],
  ])('options.llmAnalytics as %s is refused', (_label, value, field) => {
    expect(thrownBy(() => startRun(ada, {}, { llmAnalytics: value as boolean }))).toMatchObject({ name: 'OutboxError', code: 'invalid', field });
  });
});

describe('$ai_generation: one per model call', () => {
  it('every property, latencies in seconds, a child of the run trace, the thread as session', () => {
    const c = clock();
    const run = startRun(ada, { agentId: 'agent_1' }, { llmAnalytics: true, now: c.now });
    c.advance(1500);
    const generation = run.modelCall({
      modelId: 'claude-sonnet-4',
      modelTitle: 'Claude Sonnet 4',
      provider: 'anthropic',
      inputTokens: 1200,
      outputTokens: 300,
      latencyMs: 1500,
      timeToFirstTokenMs: 250,
      httpStatus: 200,
      cacheReadInputTokens: 800,
      cacheCreationInputTokens: 100,
      reasoningTokens: 40,
      inputCostUsd: 0.0036,
      outputCostUsd: 0.0045,
      totalCostUsd: 0.0081,
    });
    const { $ai_trace_id: trace, $ai_span_id: span, ...rest } = own(generation);
    expect(trace).toMatch(UUID7);
    expect(span).toMatch(UUID7);
    expect(span).not.toBe(trace);
    expect(rest).toStrictEqual({
      $ai_session_id: 'thread_1',
      $ai_parent_id: trace,
      $ai_model: 'claude-sonnet-4',
      $ai_provider: 'anthropic',
      $ai_input_tokens: 1200,
      $ai_output_tokens: 300,
      $ai_cache_read_input_tokens: 800,
      $ai_cache_creation_input_tokens: 100,
      $ai_reasoning_tokens: 40,
      $ai_latency: 1.5,
      $ai_time_to_first_token: 0.25,
      $ai_http_status: 200,
      $ai_is_error: false,
      $ai_input_cost_usd: 0.0036,
      $ai_output_cost_usd: 0.0045,
      $ai_total_cost_usd: 0.0081,
    });
    expect(generation.timestamp).toEqual(c.at(1500));
  });

  it('only what is known: no latency, cost, provider or session when not given; tokens 0 when not reported', () => {
    const run = startRun({ ...ada, threadId: null }, { modelId: 'gpt-4.1' }, { llmAnalytics: true });
    const { $ai_trace_id, $ai_span_id, ...rest } = own(run.modelCall({}));
    expect(rest).toStrictEqual({ $ai_parent_id: $ai_trace_id, $ai_model: 'gpt-4.1', $ai_input_tokens: 0, $ai_output_tokens: 0, $ai_is_error: false });
  });

  it('the model and provider: the call’s, else the last named in the run (its start counts for the model)', () => {
    const run = startRun(ada, { modelId: 'start-model' }, { llmAnalytics: true });
    expect(run.modelCall({}).properties).toMatchObject({ $ai_model: 'start-model' });
    expect(run.modelCall({}).properties).not.toHaveProperty('$ai_provider');
    run.modelCall({ modelId: 'gpt-4.1', provider: 'openai' });
    expect(run.modelCall({ inputTokens: 1 }).properties).toMatchObject({ $ai_model: 'gpt-4.1', $ai_provider: 'openai' });
  });

  it('an errored call: $ai_is_error, the error redacted and cut like error_message, its HTTP status when given', () => {
    const run = startRun(digest, { modelId: 'm' }, { llmAnalytics: true });
    const failed = run.modelCall({ error: new Error(`429 for key sk-live-0123456789abcdef: ${'x'.repeat(2000)}`), httpStatus: 429, latencyMs: 80 });
    expect(failed.properties).toMatchObject({ $ai_is_error: true, $ai_http_status: 429, $ai_latency: 0.08 });
    const message = failed.properties.$ai_error as string;
    expect(message.startsWith('429 for key [redacted]: xxx')).toBe(true);
    expect(message).toHaveLength(1000);
    expect(run.modelCall({ isError: true }).properties).toMatchObject({ $ai_is_error: true });
    expect(run.modelCall({ isError: true }).properties).not.toHaveProperty('$ai_error');
  });

  it('the token sums of chat_message_completed are unchanged by LLM analytics', () => {
    const run = startRun(ada, {}, { llmAnalytics: true });
    run.modelCall({ modelId: 'm', inputTokens: 1000, outputTokens: 100, latencyMs: 5 });
    run.modelCall({ inputTokens: 1200, outputTokens: 250, totalTokens: 1500 });
    expect(run.complete()[0]!.properties).toMatchObject({ input_tokens: 2200, output_tokens: 350, total_tokens: 2600 });
  });
});

describe('no message content by default', () => {
  const content: ModelCall = {
    modelId: 'm',
    input: [{ role: 'user', content: 'my key is sk-ant-api03-SECRETSECRET, Authorization: Bearer abc.def.ghi' }],
    output: [{ role: 'assistant', content: 'noted' }],
  };

  it('content passed to a run without { content: true } is not sent', () => {
    const properties = startRun(ada, {}, { llmAnalytics: true }).modelCall(content).properties;
    expect(properties).not.toHaveProperty('$ai_input');
    expect(properties).not.toHaveProperty('$ai_output_choices');
    expect(JSON.stringify(properties)).not.toContain('SECRET');
  });

  it('with { content: true }: $ai_input and $ai_output_choices, secrets redacted at any depth, unstorable characters replaced', () => {
    const run = startRun(ada, {}, { llmAnalytics: { content: true } });
    const properties = run.modelCall({
      ...content,
      output: [{ role: 'assistant', content: 'a\u0000b\ud800c', parts: [{ text: 'token=hunter2' }] }],
    }).properties;
    expect(properties.$ai_input).toEqual([{ role: 'user', content: 'my key is [redacted], Authorization: Bearer [redacted]' }]);
    expect(properties.$ai_output_choices).toEqual([{ role: 'assistant', content: 'a\ufffdb\ufffdc', parts: [{ text: 'token=[redacted]' }] }]);
    expect(content.input).toEqual([{ role: 'user', content: 'my key is sk-ant-api03-SECRETSECRET, Authorization: Bearer abc.def.ghi' }]);
  });

  it.each<[string, unknown, string]>([
    ['a class instance', [{ role: 'user', content: new Map() }], 'call.input[0].content'],
    ['NaN', { score: Number.NaN }, 'call.input.score'],
    ['an undefined array item', ['a', undefined], 'call.input[1]'],
    ['a function', { 'tool call': () => 1 }, 'call.input["tool call"]'],
  ])('content that is not JSON is refused, naming where: %s', (_label, input, field) => {
    const run = startRun(ada, {}, { llmAnalytics: { content: true } });
    expect(thrownBy(() => run.modelCall({ modelId: 'm', input }))).toMatchObject({ name: 'OutboxError', code: 'not_serializable', field });
  });
});

describe('$ai_span: one per tool call', () => {
  it('the tool name, its latency in seconds, its error, a child of the trace; beside an unchanged tool_called', () => {
    const c = clock();
    const run = startRun(ada, {}, { llmAnalytics: true, now: c.now });
    c.advance(40);
    const [called, span] = run.toolCalled({
      ...tool,
      annotations: { readOnlyHint: true },
      error: new Error('fetch https://u:sk-live-0123456789abcdef@h failed'),
    });
    expect(called!.properties).toMatchObject({ tool_name: 'web.search', latency_ms: 1234, is_error: true, read_only: true });
    const { $ai_trace_id, $ai_span_id, ...rest } = own(span!);
    expect($ai_span_id).toMatch(UUID7);
    expect(rest).toStrictEqual({
      $ai_session_id: 'thread_1',
      $ai_parent_id: $ai_trace_id,
      $ai_span_name: 'web.search',
      $ai_latency: 1.234,
      $ai_is_error: true,
      $ai_error: 'fetch https://[redacted]@h failed',
    });
    expect(span!.timestamp).toEqual(c.at(40));
    const [, ok] = run.toolCalled({ toolName: 'read', source: 'builtin', latencyMs: 0, result: { isError: true } });
    expect(ok!.properties).toMatchObject({ $ai_span_name: 'read', $ai_latency: 0, $ai_is_error: true });
    expect(ok!.properties).not.toHaveProperty('$ai_error');
  });
});

describe('$ai_trace: one per run end', () => {
  it('completed: the run duration in seconds, named after the agent, not an error', () => {
    const c = clock();
    const run = startRun(ada, { agentId: 'agent_1' }, { llmAnalytics: true, now: c.now });
    c.advance(2500);
    const [done, trace] = run.complete();
    const { $ai_trace_id, ...rest } = own(trace!);
    expect(rest).toStrictEqual({ $ai_session_id: 'thread_1', $ai_span_name: 'agent_1', $ai_latency: 2.5, $ai_is_error: false });
    expect(trace!.timestamp).toEqual(done!.timestamp);
  });

  it('failed: an error, with the redacted message; aborted: not an error; no agent: no name', () => {
    const [failed, trace] = startRun(ada, {}, { llmAnalytics: true }).fail(new Error('401 Bearer abc123def456'));
    expect(own(trace!)).toMatchObject({ $ai_is_error: true, $ai_error: failed!.properties.error_message });
    expect(trace!.properties.$ai_error).toBe('401 Bearer [redacted]');
    expect(trace!.properties).not.toHaveProperty('$ai_span_name');
    const [, aborted] = startRun(digest, {}, { llmAnalytics: true }).abort('timeout');
    expect(aborted!.properties).toMatchObject({ $ai_is_error: false });
    expect(aborted!.properties).not.toHaveProperty('$ai_error');
  });
});

describe('one trace per run, the attribution of the run, no profile', () => {
  it("every $ai_ event of a run shares its trace id; another run's differs", () => {
    const run = startRun(ada, { modelId: 'm' }, { llmAnalytics: true });
    const events = [run.modelCall({}), run.modelCall({}), ...run.toolCalled(search), ...run.complete()].filter((e) => e.event.startsWith('$ai_'));
    expect(events.map((e) => e.event)).toEqual(['$ai_generation', '$ai_generation', '$ai_span', '$ai_trace']);
    expect(new Set(events.map((e) => e.properties.$ai_trace_id)).size).toBe(1);
    const spanIds = events.slice(0, 3).map((e) => e.properties.$ai_span_id);
    expect(new Set(spanIds).size).toBe(3);
    expect(events[3]!.properties).not.toHaveProperty('$ai_span_id');
    const other = startRun(ada, {}, { llmAnalytics: true }).abort('cancelled')[0]!;
    expect(other.properties.$ai_trace_id).not.toBe(events[0]!.properties.$ai_trace_id);
  });

  it("distinct id, groups and attribution keys of the run; the entities' ids without their profile fields", () => {
    const run = startRun(digest, { modelId: 'm' }, { llmAnalytics: true });
    const started = run.started;
    for (const event of [run.modelCall({}), run.toolCalled(search)[1]!, run.fail(new Error('x'))[1]!]) {
      expect(event.distinctId).toBe('automation_auto_1');
      expect(event.groups).toEqual({ organization: 'org_1' });
      for (const key of ATTRIBUTION_KEYS) expect(event.properties[key]).toEqual(started.properties[key]);
      expect(event.properties.user_id).toBe('owner_1');
      expect(event.profiles).toEqual({
        user: { id: 'owner_1', fields: {} },
        automation: { id: 'auto_1', fields: {} },
        organization: { id: 'org_1', fields: {} },
      });
      expect(JSON.stringify(event.properties)).not.toContain('$set');
    }
  });
});

describe('bad input: OutboxError naming the field, and nothing changes', () => {
  it.each<[string, ModelCall, string, string]>([
    ['negative tokens', { inputTokens: -1 }, 'invalid', 'call.inputTokens'],
    ['negative cache tokens', { cacheReadInputTokens: -5 }, 'invalid', 'call.cacheReadInputTokens'],
    ['fractional reasoning tokens', { reasoningTokens: 1.5 }, 'invalid', 'call.reasoningTokens'],
    ['non-finite latency', { latencyMs: Number.POSITIVE_INFINITY }, 'invalid', 'call.latencyMs'],
    ['negative time to first token', { timeToFirstTokenMs: -1 }, 'invalid', 'call.timeToFirstTokenMs'],
    ['a string latency', { latencyMs: '12' as unknown as number }, 'invalid', 'call.latencyMs'],
    ['an HTTP status out of range', { httpStatus: 42 }, 'invalid', 'call.httpStatus'],
    ['a negative cost', { totalCostUsd: -0.01 }, 'invalid', 'call.totalCostUsd'],
    ['a NaN cost', { inputCostUsd: Number.NaN }, 'invalid', 'call.inputCostUsd'],
    ['isError not a boolean', { isError: 'yes' as unknown as boolean }, 'invalid', 'call.isError'],
    ['isError false with an error', { isError: false, error: new Error('x') }, 'invalid', 'call.isError'],
    ['a provider not a string', { provider: 7 as unknown as string }, 'invalid', 'call.provider'],
  ])('%s', (_label, call, code, field) => {
    for (const options of [{}, { llmAnalytics: true }] as const) {
      const run = startRun(ada, { modelId: 'm' }, options);
      run.modelCall({ inputTokens: 10, outputTokens: 1 });
      expect(thrownBy(() => run.modelCall({ inputTokens: 5, ...call }))).toMatchObject({ name: 'OutboxError', code, field });
      expect([run.complete()].flat()[0]!.properties.input_tokens).toBe(10);
    }
  });

  it('a call without any model known to the run is refused with LLM analytics on (only)', () => {
    expect(startRun(ada).modelCall({ inputTokens: 1 })).toBeNull();
    const run = startRun(ada, {}, { llmAnalytics: true });
    const error = thrownBy(() => run.modelCall({ inputTokens: 1 }));
    expect(error).toBeInstanceOf(OutboxError);
    expect(error).toMatchObject({ code: 'required', field: 'call.modelId' });
    expect(run.complete()[0]!.properties.input_tokens).toBeNull();
  });

  it('a missing call is refused', () => {
    expect(thrownBy(() => startRun(ada).modelCall(null as unknown as ModelCall))).toMatchObject({ code: 'required', field: 'call' });
  });
});
