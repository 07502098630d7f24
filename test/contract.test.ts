/**
 * The attribution contract as PostHog sees it: handler-side builders -> record() -> worker -> posthog-node
 * -> the capture endpoint. Each docs/attribution.md rule that is observable at the endpoint is checked here
 * end to end (the rule-by-rule tables are in test/attribution/).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer, type ReceivedEvent } from '../dev/capture-server.ts';
import { attributedEvent, record, startRun, toolCalled, type RunContext } from '../src/index.ts';
import { startWorker, type OutboxWorker } from '../worker/index.ts';
import type { TestDatabase } from './support/db.ts';
import { createWorkerDatabase, outboxEmpty } from './support/worker.ts';

const ada: RunContext = {
  organization: { id: 'org_acme', name: 'Acme', slug: 'acme' },
  user: { id: 'user_ada', email: 'ada@example.com', name: 'Ada' },
  virtualMcpName: 'research',
  threadId: 'thread_1',
  userAgent: 'acme-desktop/2.0',
};
const digest: RunContext = {
  organization: { id: 'org_acme' },
  user: { id: 'user_ada' }, // the owner: an automation run does not know the owner's email
  automation: { id: 'auto_digest', name: 'Nightly digest', triggerId: 'trg_cron' },
  virtualMcpName: 'digest',
  threadId: 'thread_2',
};
const legacy: RunContext = { organization: { id: 'org_legacy' }, user: { id: 'user_legacy' }, threadId: 'thread_3' };

const abortError = new DOMException('This operation was aborted', 'AbortError');
/** One failure per error category, in the contract's order. */
const FAILURES: [string, unknown][] = [
  ['aborted', abortError],
  ['insufficient_funds', new Error('OpenRouter: key_limit exceeded')],
  ['rate_limit', new Error('Too many requests')],
  ['timeout', new Error('MCP call timed out')],
  ['auth', new Error('401 Unauthorized: Bearer abc123def456 rejected')],
  ['tool_error', new Error('MCP server connection closed')],
  ['model_error', new Error('anthropic overloaded')],
  ['unknown', new Error('something odd')],
];

let db: TestDatabase;
let capture: CaptureServer;
let worker: OutboxWorker;
let received: ReceivedEvent[];
let sent: { uuids: string[]; cancelledRunStart: string };

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_contract' });

  let t = Date.parse('2026-11-26T09:00:00.000Z');
  const now = () => t;
  const uuids: string[] = [];
  // 1. Ada chats: two model calls, an MCP tool, completes.
  const chat = startRun(ada, { agentId: 'agent_1', mode: 'chat', credentialId: 'cred_1' }, { now });
  uuids.push(...(await db.sql.begin((tx) => record(tx, [chat.started, attributedEvent(ada, 'chat_started', { source: 'sidebar' })]))));
  t += 700;
  chat.modelCall({ modelId: 'claude-sonnet', modelTitle: 'Claude Sonnet', inputTokens: 1000, outputTokens: 100 });
  chat.modelCall({ inputTokens: 1200, outputTokens: 250 });
  uuids.push(
    ...(await record(
      db.sql,
      chat.toolCalled({
        toolName: 'web.search',
        toolSafeName: 'web_search',
        source: 'mcp',
        annotations: { readOnlyHint: true, openWorldHint: true },
        latencyMs: 85,
        result: { content: [] },
      }),
    )),
  );
  t += 300;
  uuids.push(...(await db.sql.begin((tx) => record(tx, chat.complete({ finishReason: 'stop', threadStatus: 'completed' })))));

  // 2. The automation runs, calls a failing builtin tool, and is cancelled: an event, since nobody's client saw it.
  const auto = startRun(digest, { agentId: 'agent_2', mode: 'agent' }, { now });
  uuids.push(
    ...(await record(db.sql, [auto.started, auto.toolCalled({ toolName: 'send_email', source: 'builtin', latencyMs: 12, error: new Error('smtp down') })])),
  );
  t += 50;
  uuids.push(...(await record(db.sql, auto.abort('cancelled'))));

  // 3. Ada presses stop: no server event for the end of that run.
  const stopped = startRun(ada, { agentId: 'agent_1', mode: 'chat' }, { now });
  uuids.push(...(await record(db.sql, stopped.started)));
  expect(await record(db.sql, stopped.abort('cancelled'))).toEqual([]);

  // 4. A legacy user in a legacy org fails with a rate limit whose message holds a key; an unknown abort on another run.
  const failing = startRun(legacy, { mode: 'chat' }, { now });
  t += 10;
  uuids.push(...(await record(db.sql, failing.fail(new Error('429 Too Many Requests for key sk-live-0123456789abcdef')))));
  const unknown = startRun(legacy, {}, { now });
  uuids.push(...(await record(db.sql, unknown.abort(new DOMException('This operation was aborted', 'AbortError')))));

  // 5. Every other abort reason, on person and automation runs, and a failure in every error category.
  for (const reason of ['server-aborted', 'ghost', 'reaped', 'timeout']) {
    for (const ctx of [ada, digest]) uuids.push(...(await record(db.sql, startRun(ctx, {}, { now }).abort(reason))));
  }
  for (const [, error] of FAILURES) uuids.push(...(await record(db.sql, startRun(legacy, {}, { now }).fail(error))));

  // 6. A rolled-back handler: PostHog never sees it.
  await expect(
    db.sql.begin(async (tx) => {
      await record(tx, toolCalled(ada, { toolName: 'ghost_tool', source: 'builtin', latencyMs: 1, result: null }));
      throw new Error('handler failed');
    }),
  ).rejects.toThrow('handler failed');

  sent = { uuids, cancelledRunStart: stopped.started.event };
  worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_contract', host: capture.url }, backoff: { baseMs: 100, maxMs: 1000 } });
  // the events, then one $identify per person / persona with a known field and one $groupidentify per org with one
  await capture.waitFor(uuids.length + 3, { timeoutMs: 20_000 });
  await outboxEmpty(db.sql, { what: 'the outbox to empty' });
  received = [...capture.events];
});

afterAll(async () => {
  await worker?.stop(5_000);
  await capture?.close();
  await db?.drop();
});

const byName = (name: string) => received.filter((e) => e.event === name);
const ATTRIBUTION = [
  'organization_id',
  'user_id',
  'is_automation',
  'automation_id',
  'automation_name',
  'trigger_id',
  'user_agent',
  'virtual_mcp_name',
  'thread_id',
];

describe('what PostHog receives', () => {
  it('every committed event exactly once, with the uuid written at record time; nothing of the rolled-back handler', () => {
    const events = received.filter((e) => !e.event.startsWith('$'));
    expect(events.map((e) => e.uuid).sort()).toEqual([...sent.uuids].sort());
    expect(received.some((e) => e.properties.tool_name === 'ghost_tool')).toBe(false);
  });

  it('distinct id: automation_<id> for automation runs, else the user; owner kept as user_id', () => {
    for (const e of received.filter((x) => !x.event.startsWith('$'))) {
      const automationId = e.properties.automation_id;
      expect(e.distinct_id).toBe(automationId ? `automation_${automationId}` : e.properties.user_id);
    }
    expect(byName('chat_message_aborted').find((e) => e.properties.is_automation)?.properties.user_id).toBe('user_ada');
  });

  it('every chat and tool event carries every attribution key and $groups.organization; org name/slug are not properties', () => {
    for (const e of received.filter((x) => !x.event.startsWith('$'))) {
      for (const key of ATTRIBUTION) expect(e.properties, `${e.event}.${key}`).toHaveProperty(key);
      expect(e.properties.$groups).toEqual({ organization: e.properties.organization_id });
      expect(JSON.stringify(e.properties)).not.toContain('Acme');
    }
  });

  it('the completed event sums tokens over every model call and reports the duration', () => {
    const [done] = byName('chat_message_completed');
    expect(done!.properties).toMatchObject({
      input_tokens: 2200,
      output_tokens: 350,
      total_tokens: 2550,
      duration_ms: 1000,
      model_id: 'claude-sonnet',
      finish_reason: 'stop',
      thread_status: 'completed',
      user_agent: 'acme-desktop/2.0',
      virtual_mcp_name: 'research',
    });
  });

  it("abort reasons: automation cancel and unknown reasons are sent, a person's own cancel is not", () => {
    const aborted = byName('chat_message_aborted');
    const reasons = ['server-aborted', 'ghost', 'reaped', 'timeout'].flatMap((r) => [
      ['automation_auto_digest', r],
      ['user_ada', r],
    ]);
    expect(aborted.map((e) => [e.distinct_id, e.properties.abort_reason]).sort()).toEqual(
      [['automation_auto_digest', 'cancelled'], ['user_legacy', 'unknown'], ...reasons].sort(),
    );
    expect(byName('chat_message_started').filter((e) => e.distinct_id === 'user_ada')).toHaveLength(2);
    // Ada's stopped run has a start and no end; her other runs ended once each
    const adaRunEnds = received.filter((e) => e.distinct_id === 'user_ada' && e.event.startsWith('chat_message_') && e.event !== 'chat_message_started');
    expect(adaRunEnds).toHaveLength(1 + 4);
    expect(adaRunEnds.some((e) => e.properties.abort_reason === 'cancelled')).toBe(false);
  });

  it('failures carry the category and the redacted message, one of each category', () => {
    const failed = byName('chat_message_failed').map((e) => e.properties);
    expect(failed.map((p) => p.error_category).sort()).toEqual(['rate_limit', ...FAILURES.map(([category]) => category)].sort());
    expect(failed).toContainEqual(
      expect.objectContaining({ error_category: 'rate_limit', error_message: '429 Too Many Requests for key [redacted]', user_id: 'user_legacy' }),
    );
    expect(failed).toContainEqual(expect.objectContaining({ error_category: 'auth', error_message: '401 Unauthorized: Bearer [redacted] rejected' }));
    expect(JSON.stringify(failed)).not.toMatch(/abc123def456|0123456789abcdef/);
  });

  it('tool_called: success and failure, annotations or null', () => {
    const tools = byName('tool_called');
    expect(
      tools.map((e) => [e.properties.tool_name, e.properties.tool_source, e.properties.is_error, e.properties.read_only, e.properties.destructive]).sort(),
    ).toEqual([
      ['send_email', 'builtin', true, null, null],
      ['web.search', 'mcp', false, true, null],
    ]);
  });

  it('re-identifies each touched user and persona once with only known fields, each organization once', () => {
    const identify = byName('$identify');
    expect(identify.map((e) => e.distinct_id).sort()).toEqual(['automation_auto_digest', 'user_ada']);
    expect(identify.find((e) => e.distinct_id === 'user_ada')!.properties.$set).toEqual({ email: 'ada@example.com', name: 'Ada' });
    expect(identify.find((e) => e.distinct_id === 'automation_auto_digest')!.properties.$set).toEqual({
      name: 'Nightly digest',
      is_automation: true,
      automation_id: 'auto_digest',
      owner_user_id: 'user_ada',
      organization_id: 'org_acme',
    });
    const groups = byName('$groupidentify');
    expect(groups.map((e) => e.properties)).toEqual([
      expect.objectContaining({ $group_type: 'organization', $group_key: 'org_acme', $group_set: { name: 'Acme', slug: 'acme' } }),
    ]);
    // legacy user and org had no known field: nothing to set, so nothing sent
    expect(received.some((e) => e.event.startsWith('$') && JSON.stringify(e).includes('legacy'))).toBe(false);
    for (const e of [...identify, ...groups]) {
      expect(e.uuid).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof e.timestamp).toBe('string');
    }
  });
});
