/** The demo plan's runs by people: chats, tools, every abort reason and a failure in every error category. */
import type { ErrorCategory } from '../../src/index.ts';
import type { PlannedModelCall, PlannedRun } from './plan-types.ts';

export const SONNET = { modelId: 'claude-sonnet-4', modelTitle: 'Claude Sonnet 4', provider: 'anthropic' };
export const HAIKU = { modelId: 'claude-haiku-4', modelTitle: 'Claude Haiku 4', provider: 'anthropic' };
export const GPT = { modelId: 'gpt-4.1', modelTitle: 'GPT-4.1', provider: 'openai' };
const DESKTOP = 'acme-desktop/2.4.1';
const WEB = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15';
const CLI_AGENT = 'chat-cli/0.9.3';

const ANTHROPIC_KEY = 'sk-ant-api03-DEMOx9Qk2LwTf8RbV1nZ';
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.ZGVtby11c2Vy.c2lnbmF0dXJlLWRlbW8';
/** Secrets that appear in failure messages; none may reach PostHog. */
export const SECRETS = [ANTHROPIC_KEY, BEARER];

export function model(
  which: { modelId: string; modelTitle: string; provider: string },
  inputTokens: number,
  outputTokens: number,
  latencyMs: number,
  error?: PlannedModelCall['error'],
): PlannedModelCall {
  return { ...which, inputTokens, outputTokens, latencyMs, ...(error ? { error } : {}) };
}

function fails(label: string, thread: string, user: string, message: string, category: ErrorCategory, name?: string): PlannedRun {
  return {
    label,
    thread,
    actor: { user },
    userAgent: WEB,
    virtualMcp: 'research',
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    // the model call fails, and the run with it
    modelCalls: [model(SONNET, 900, 0, 40, { message, ...(name ? { name } : {}) })],
    tools: [],
    end: { kind: 'fail', message, category, ...(name ? { name } : {}) },
  };
}

export const PEOPLE_RUNS: PlannedRun[] = [
  {
    label: 'chat with three model calls, an annotated MCP tool and a builtin tool without annotations; shared afterwards',
    thread: 'thread_ada_1',
    actor: { user: 'user_ada' },
    userAgent: DESKTOP,
    virtualMcp: 'research',
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(SONNET, 1200, 180, 60), model(SONNET, 2300, 240, 80), model(SONNET, 2900, 610, 90)],
    tools: [
      {
        name: 'github.search_issues',
        safeName: 'github_search_issues',
        source: 'mcp',
        annotations: { readOnlyHint: true, openWorldHint: true },
        latencyMs: 84,
        outcome: 'ok',
      },
      { name: 'code_interpreter', source: 'builtin', latencyMs: 140, outcome: 'ok' },
    ],
    end: { kind: 'complete', finishReason: 'stop', threadStatus: 'completed' },
    share: true,
  },
  {
    label: 'follow-up message on the same thread, a write tool with full annotations',
    thread: 'thread_ada_1',
    actor: { user: 'user_ada' },
    userAgent: DESKTOP,
    virtualMcp: 'research',
    agentId: 'agent_assistant',
    mode: 'chat',
    modelCalls: [model(SONNET, 3400, 120, 50), model(SONNET, 3700, 380, 70)],
    tools: [
      {
        name: 'linear.create_issue',
        safeName: 'linear_create_issue',
        source: 'mcp',
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
        latencyMs: 230,
        outcome: 'ok',
      },
    ],
    end: { kind: 'complete', finishReason: 'stop', threadStatus: 'completed' },
  },
  {
    label: 'an MCP tool throws (its server is down), the run recovers with a builtin tool',
    thread: 'thread_grace_1',
    actor: { user: 'user_grace' },
    userAgent: WEB,
    virtualMcp: 'analytics',
    agentId: 'agent_analyst',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(GPT, 800, 90, 50), model(GPT, 1500, 420, 70)],
    tools: [
      { name: 'postgres.query', safeName: 'postgres_query', source: 'mcp', annotations: { readOnlyHint: true }, latencyMs: 31, outcome: 'throws' },
      { name: 'web_search', source: 'builtin', annotations: { readOnlyHint: true, openWorldHint: true }, latencyMs: 410, outcome: 'ok' },
    ],
    end: { kind: 'complete', finishReason: 'stop', threadStatus: 'completed' },
  },
  {
    label: 'an MCP tool without annotations answers with isError',
    thread: 'thread_grace_2',
    actor: { user: 'user_grace' },
    userAgent: CLI_AGENT,
    virtualMcp: null,
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(HAIKU, 600, 75, 30)],
    tools: [{ name: 'jira.get_ticket', source: 'mcp', latencyMs: 95, outcome: 'result-error' }],
    end: { kind: 'complete', finishReason: 'stop', threadStatus: 'completed' },
  },
  {
    label: 'the user presses stop: the client sends chat_message_stopped, the server sends nothing',
    thread: 'thread_linus_1',
    actor: { user: 'user_linus' },
    userAgent: DESKTOP,
    virtualMcp: 'engineering',
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(SONNET, 1100, 60, 60)],
    tools: [{ name: 'shell', source: 'builtin', annotations: { destructiveHint: true, openWorldHint: false }, latencyMs: 55, outcome: 'ok' }],
    end: { kind: 'abort', reason: 'cancelled' },
  },
  {
    label: 'a newer message on the thread replaces this run (server-aborted)',
    thread: 'thread_margaret_1',
    actor: { user: 'user_margaret' },
    userAgent: WEB,
    virtualMcp: 'engineering',
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(SONNET, 700, 30, 40)],
    tools: [],
    end: { kind: 'abort', reason: 'server-aborted' },
  },
  {
    label: 'the replacing run completes',
    thread: 'thread_margaret_1',
    actor: { user: 'user_margaret' },
    userAgent: WEB,
    virtualMcp: 'engineering',
    agentId: 'agent_assistant',
    mode: 'chat',
    modelCalls: [model(SONNET, 900, 210, 50), model(SONNET, 1300, 330, 60)],
    tools: [],
    end: { kind: 'complete', finishReason: 'stop', threadStatus: 'completed' },
  },
  {
    label: 'a legacy user (no profile) in a known organization',
    thread: 'thread_legacy42_1',
    actor: { user: 'user_legacy_42' },
    userAgent: WEB,
    virtualMcp: 'research',
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(HAIKU, 500, 140, 30)],
    tools: [{ name: 'read_file', source: 'builtin', annotations: { readOnlyHint: true, idempotentHint: true }, latencyMs: 12, outcome: 'ok' }],
    end: { kind: 'complete', finishReason: 'length', threadStatus: 'completed' },
  },
  {
    label: 'the process holding the run went away (ghost); legacy user in a legacy organization',
    thread: 'thread_legacy17_1',
    actor: { user: 'user_legacy_17' },
    userAgent: null,
    virtualMcp: null,
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(HAIKU, 400, 20, 30)],
    tools: [],
    end: { kind: 'abort', reason: 'ghost' },
  },
  {
    label: 'force-failed for running too long (reaped)',
    thread: 'thread_ada_2',
    actor: { user: 'user_ada' },
    userAgent: DESKTOP,
    virtualMcp: 'research',
    agentId: 'agent_researcher',
    mode: 'agent',
    newThread: true,
    modelCalls: [model(SONNET, 5200, 900, 80), model(SONNET, 7400, 1100, 90)],
    tools: [
      {
        name: 'github.search_code',
        safeName: 'github_search_code',
        source: 'mcp',
        annotations: { readOnlyHint: true, openWorldHint: true },
        latencyMs: 320,
        outcome: 'ok',
      },
    ],
    end: { kind: 'abort', reason: 'reaped' },
  },
  {
    label: 'aborted with no reason (a DOMException): unknown; legacy user in a legacy organization',
    thread: 'thread_legacy88_1',
    actor: { user: 'user_legacy_88' },
    userAgent: CLI_AGENT,
    virtualMcp: null,
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(GPT, 300, 10, 30)],
    tools: [],
    end: { kind: 'abort', reason: null },
  },
  {
    label: 'aborted with a reason the contract does not know: unknown',
    thread: 'thread_linus_2',
    actor: { user: 'user_linus' },
    userAgent: DESKTOP,
    virtualMcp: 'engineering',
    agentId: 'agent_assistant',
    mode: 'chat',
    newThread: true,
    modelCalls: [model(SONNET, 650, 40, 40)],
    tools: [],
    end: { kind: 'abort', reason: 'client-disconnected' },
  },
  fails('out of credits', 'thread_ada_3', 'user_ada', '402 Payment Required: insufficient credits on this key (key_limit reached)', 'insufficient_funds'),
  fails('rate limited', 'thread_grace_3', 'user_grace', '429 Too Many Requests: rate limit of 50 requests per minute exceeded', 'rate_limit'),
  fails('the model stream timed out', 'thread_margaret_2', 'user_margaret', 'stream timed out after 120000 ms waiting for the first token', 'timeout'),
  fails(
    'a revoked provider key, quoted in the error',
    'thread_linus_3',
    'user_linus',
    `401 Unauthorized from provider: invalid x-api-key ${ANTHROPIC_KEY} for this workspace`,
    'auth',
  ),
  fails(
    'an MCP server dropped the connection, with a bearer token in the message',
    'thread_legacy42_2',
    'user_legacy_42',
    `MCP server "github" reset the connection during POST /mcp (Authorization: Bearer ${BEARER})`,
    'tool_error',
  ),
  fails('the provider is overloaded', 'thread_ada_4', 'user_ada', 'Anthropic provider returned overloaded_error', 'model_error'),
  fails('the model call was aborted (AbortError)', 'thread_grace_4', 'user_grace', 'This operation was aborted', 'aborted', 'AbortError'),
  fails('a bug in the handler', 'thread_margaret_3', 'user_margaret', "Cannot read properties of undefined (reading 'parts')", 'unknown'),
];
