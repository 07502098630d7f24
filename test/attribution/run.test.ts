// docs/attribution.md: "Events" (every event, its exact own properties) and the custom-event rule.
import { describe, expect, it } from 'vitest';
import { ATTRIBUTION_KEYS, attributedEvent, OutboxError, startRun, toolCalled, type OutboxEvent, type RunContext, type ToolCall } from '../../src/index.ts';

const context: RunContext = {
  organization: { id: 'org_1', name: 'Acme', slug: 'acme' },
  user: { id: 'user_1', email: 'ada@example.com' },
  virtualMcpName: 'vmcp',
  threadId: 'thread_1',
  userAgent: 'ua/1',
};

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

function ownProperties(event: OutboxEvent): Record<string, unknown> {
  const own = { ...event.properties };
  for (const key of ATTRIBUTION_KEYS) {
    expect(own, `attribution key ${key}`).toHaveProperty(key);
    delete own[key];
  }
  return own;
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('event catalogue', () => {
  it('chat_message_started: agent_id, mode, credential_id, is_resume', () => {
    const c = clock();
    const run = startRun(context, { agentId: 'agent_1', mode: 'chat', credentialId: 'cred_1', isResume: true }, c);
    expect(run.started.event).toBe('chat_message_started');
    expect(run.started.timestamp).toEqual(c.at(0));
    expect(ownProperties(run.started)).toStrictEqual({ agent_id: 'agent_1', mode: 'chat', credential_id: 'cred_1', is_resume: true });
  });

  it('chat_message_started with nothing known: null, is_resume false', () => {
    expect(ownProperties(startRun(context).started)).toStrictEqual({ agent_id: null, mode: null, credential_id: null, is_resume: false });
  });

  it('chat_message_completed: tokens summed over every model call, duration from the start, last model', () => {
    const c = clock();
    const run = startRun(context, { agentId: 'agent_1', mode: 'agent', modelId: 'm-start' }, c);
    c.advance(400);
    run.modelCall({ modelId: 'claude-sonnet', modelTitle: 'Claude Sonnet', inputTokens: 1000, outputTokens: 200 });
    run.modelCall({ inputTokens: 1500, outputTokens: 300, totalTokens: 1850 });
    run.modelCall({ modelId: 'claude-haiku', inputTokens: 10, outputTokens: null });
    c.advance(1234);
    const done = run.complete({ finishReason: 'stop', threadStatus: 'completed' });
    expect(done.event).toBe('chat_message_completed');
    expect(done.timestamp).toEqual(c.at(1634));
    expect(ownProperties(done)).toStrictEqual({
      agent_id: 'agent_1',
      model_id: 'claude-haiku',
      model_title: 'Claude Sonnet',
      mode: 'agent',
      duration_ms: 1634,
      finish_reason: 'stop',
      thread_status: 'completed',
      input_tokens: 2510,
      output_tokens: 500,
      total_tokens: 1200 + 1850 + 10,
      is_resume: false,
    });
  });

  it('chat_message_completed without any model call: token counts unknown (null); completion may name the model', () => {
    const run = startRun(context);
    const done = run.complete({ modelId: 'm', modelTitle: 'M' });
    expect(done.properties).toMatchObject({
      input_tokens: null,
      output_tokens: null,
      total_tokens: null,
      model_id: 'm',
      model_title: 'M',
      finish_reason: null,
      thread_status: null,
    });
  });

  it('chat_message_aborted: agent_id, model_id, mode, duration_ms, is_resume, abort_reason', () => {
    const c = clock();
    const run = startRun(context, { agentId: 'a', mode: 'chat', isResume: true }, c);
    run.modelCall({ modelId: 'gpt', inputTokens: 1, outputTokens: 1 });
    c.advance(99);
    const aborted = run.abort('server-aborted')!;
    expect(aborted.event).toBe('chat_message_aborted');
    expect(ownProperties(aborted)).toStrictEqual({
      agent_id: 'a',
      model_id: 'gpt',
      mode: 'chat',
      duration_ms: 99,
      is_resume: true,
      abort_reason: 'server-aborted',
    });
  });

  it('chat_message_failed: agent_id, model_id, mode, duration_ms, is_resume, error_category, error_message', () => {
    const c = clock();
    const run = startRun(context, { agentId: 'a', mode: 'chat', modelId: 'gpt' }, c);
    c.advance(5);
    const failed = run.fail(new Error('429 Too Many Requests (key sk-live-abcdefghijklmnop)'));
    expect(failed.event).toBe('chat_message_failed');
    expect(ownProperties(failed)).toStrictEqual({
      agent_id: 'a',
      model_id: 'gpt',
      mode: 'chat',
      duration_ms: 5,
      is_resume: false,
      error_category: 'rate_limit',
      error_message: '429 Too Many Requests (key [redacted])',
    });
  });

  it('every run event carries the full attribution and the profiles to re-identify', () => {
    const run = startRun({ ...context, automation: { id: 'auto_1', triggerId: 'trg' } });
    for (const event of [run.started, run.toolCalled({ toolName: 't', source: 'builtin', latencyMs: 1, result: {} }), run.complete()]) {
      expect(event.distinctId).toBe('automation_auto_1');
      expect(event.groups).toEqual({ organization: 'org_1' });
      expect(event.properties).toMatchObject({
        $groups: { organization: 'org_1' },
        is_automation: true,
        automation_id: 'auto_1',
        trigger_id: 'trg',
        user_id: 'user_1',
      });
      expect(event.profiles.automation?.fields).toMatchObject({ name: 'Automation auto_1', owner_user_id: 'user_1' });
      expect(event.profiles.user).toEqual({ id: 'user_1', fields: { email: 'ada@example.com' } });
    }
  });

  const tool = { toolName: 'github.search', toolSafeName: 'github_search', source: 'mcp', latencyMs: 41.6 } as const;
  const annotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true };
  it.each<[string, ToolCall, Record<string, unknown>]>([
    [
      'success with annotations',
      { ...tool, annotations, result: { content: [] } },
      {
        tool_name: 'github.search',
        tool_safe_name: 'github_search',
        tool_source: 'mcp',
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: true,
        latency_ms: 42,
        is_error: false,
      },
    ],
    [
      'the tool threw',
      { ...tool, annotations, error: new Error('boom') },
      {
        tool_name: 'github.search',
        tool_safe_name: 'github_search',
        tool_source: 'mcp',
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: true,
        latency_ms: 42,
        is_error: true,
      },
    ],
    [
      'the tool threw undefined',
      { ...tool, error: undefined },
      {
        tool_name: 'github.search',
        tool_safe_name: 'github_search',
        tool_source: 'mcp',
        read_only: null,
        destructive: null,
        idempotent: null,
        open_world: null,
        latency_ms: 42,
        is_error: true,
      },
    ],
    [
      'its result says isError',
      { toolName: 'read_file', source: 'builtin', latencyMs: 0, result: { isError: true, content: [] } },
      {
        tool_name: 'read_file',
        tool_safe_name: null,
        tool_source: 'builtin',
        read_only: null,
        destructive: null,
        idempotent: null,
        open_world: null,
        latency_ms: 0,
        is_error: true,
      },
    ],
    [
      'no annotations declared: null; partial annotations: the rest null',
      { toolName: 'x', source: 'builtin', latencyMs: 3, annotations: { destructiveHint: true }, result: 'text' },
      {
        tool_name: 'x',
        tool_safe_name: null,
        tool_source: 'builtin',
        read_only: null,
        destructive: true,
        idempotent: null,
        open_world: null,
        latency_ms: 3,
        is_error: false,
      },
    ],
    [
      'isError other than true is not an error',
      { toolName: 'x', source: 'builtin', latencyMs: 3, annotations: null, result: { isError: 'yes' } },
      {
        tool_name: 'x',
        tool_safe_name: null,
        tool_source: 'builtin',
        read_only: null,
        destructive: null,
        idempotent: null,
        open_world: null,
        latency_ms: 3,
        is_error: false,
      },
    ],
  ])('tool_called: %s', (_label, call, expected) => {
    const event = toolCalled(context, call);
    expect(event.event).toBe('tool_called');
    expect(event.distinctId).toBe('user_1');
    expect(ownProperties(event)).toStrictEqual(expected);
  });

  it.each<[string, unknown, string, string]>([
    ['missing tool name', { source: 'mcp', latencyMs: 1, result: 1 }, 'required', 'call.toolName'],
    ['bad source', { toolName: 't', source: 'remote', latencyMs: 1, result: 1 }, 'invalid', 'call.source'],
    ['negative latency', { toolName: 't', source: 'mcp', latencyMs: -1, result: 1 }, 'invalid', 'call.latencyMs'],
    ['NaN latency', { toolName: 't', source: 'mcp', latencyMs: Number.NaN, result: 1 }, 'invalid', 'call.latencyMs'],
    ['neither result nor error', { toolName: 't', source: 'mcp', latencyMs: 1 }, 'required', 'call.result'],
    [
      'non-boolean hint',
      { toolName: 't', source: 'mcp', latencyMs: 1, annotations: { readOnlyHint: 'yes' }, result: 1 },
      'invalid',
      'call.annotations.readOnlyHint',
    ],
  ])('tool_called rejects %s', (_label, call, code, field) => {
    expect(thrownBy(() => toolCalled(context, call as ToolCall))).toMatchObject({ name: 'OutboxError', code, field });
  });

  it.each<[string, () => unknown, string, string]>([
    ['negative tokens', () => startRun(context).modelCall({ inputTokens: -1 }), 'invalid', 'call.inputTokens'],
    ['fractional tokens', () => startRun(context).modelCall({ outputTokens: 1.5 }), 'invalid', 'call.outputTokens'],
    ['non-boolean isResume', () => startRun(context, { isResume: 'no' as unknown as boolean }), 'invalid', 'start.isResume'],
    ['non-string mode', () => startRun(context, { mode: 3 as unknown as string }), 'invalid', 'start.mode'],
    ['bad context', () => startRun({ organization: { id: 'o' } } as RunContext), 'required', 'context.user'],
  ])('the run tracker rejects %s', (_label, fn, code, field) => {
    expect(thrownBy(fn)).toMatchObject({ name: 'OutboxError', code, field });
  });
});

describe('application events get the same attribution', () => {
  it('chat_started, automation_created: attribution, groups, profiles, own properties', () => {
    const event = attributedEvent(context, 'automation_created', { automation_id_created: 'auto_9', schedule: '0 * * * *' });
    expect(event).toMatchObject({
      event: 'automation_created',
      distinctId: 'user_1',
      groups: { organization: 'org_1' },
      properties: {
        $groups: { organization: 'org_1' },
        organization_id: 'org_1',
        user_id: 'user_1',
        thread_id: 'thread_1',
        automation_id_created: 'auto_9',
        schedule: '0 * * * *',
      },
    });
    expect(event.profiles.organization).toEqual({ id: 'org_1', fields: { name: 'Acme', slug: 'acme' } });
    const run = startRun(context);
    expect(run.event('chat_started', { first: true }).properties).toMatchObject({ first: true, user_agent: 'ua/1', virtual_mcp_name: 'vmcp' });
  });

  it.each(ATTRIBUTION_KEYS)('a custom property may not overwrite %s', (key) => {
    const error = thrownBy(() => attributedEvent(context, 'chat_started', { [key]: 'x' }));
    expect(error).toBeInstanceOf(OutboxError);
    expect(error).toMatchObject({ code: 'reserved', field: `properties.${key}` });
  });

  it.each(['chat_message_started', 'chat_message_completed', 'chat_message_aborted', 'chat_message_failed', 'tool_called'])(
    'the catalogue event %s cannot be built by hand',
    (name) => {
      expect(thrownBy(() => attributedEvent(context, name))).toMatchObject({ code: 'reserved', field: 'event' });
    },
  );

  it.each([
    ['', 'required'],
    [7, 'invalid'],
    ['x'.repeat(201), 'too_long'],
    ['$identify', 'reserved'],
    ['$groupidentify', 'reserved'],
  ])('an event name %j is rejected', (name, code) => {
    expect(thrownBy(() => attributedEvent(context, name as string))).toMatchObject({ code, field: 'event' });
  });
});
