/**
 * Realistic traffic for `posthog-outbox demo`: what an AI chat platform's handlers write in a few seconds.
 *
 * `DEMO_PLAN` is the traffic as data (who, which runs, which tools, how each run ends); `simulateTraffic`
 * plays it against a database through the package's public API only (`startRun`, `attributedEvent`,
 * `record`, ...), each write in a real transaction together with an application row in the demo tables.
 * Tests derive what PostHog must receive from the plan, independently of this file.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type postgres from 'postgres';
import type { RunContext } from '../src/attribution/context.ts';
import type { ErrorCategory } from '../src/attribution/error-category.ts';
import { attributedEvent, type ToolAnnotations } from '../src/attribution/events.ts';
import { startRun } from '../src/attribution/run.ts';
import type { OutboxEvent } from '../src/event.ts';
import { record } from '../src/outbox/record.ts';

/** Postgres schema of the demo application's own tables (`messages`, `automations`). */
export const DEMO_APP_SCHEMA = 'posthog_demo_app';

export interface DemoOrganization {
  id: string;
  /** Left out for a legacy organization that predates the signup hooks: no profile, nothing to group-identify. */
  name?: string;
  slug?: string;
}

export interface DemoUser {
  id: string;
  organizationId: string;
  /** Left out for a legacy user: no profile fields, nothing to identify. */
  email?: string;
  name?: string;
}

export interface DemoAutomation {
  id: string;
  /** Null: the persona's name falls back to `Automation <id>`. */
  name: string | null;
  ownerUserId: string;
  organizationId: string;
  trigger: { id: string; type: 'cron' | 'webhook' | 'event' };
}

export interface PlannedTool {
  name: string;
  safeName?: string;
  source: 'mcp' | 'builtin';
  /** Absent: the tool declares no annotations (every hint is reported as null). */
  annotations?: ToolAnnotations;
  latencyMs: number;
  /** `ok`: a result; `result-error`: a result with `isError: true`; `throws`: the tool threw. */
  outcome: 'ok' | 'result-error' | 'throws';
}

export interface PlannedModelCall {
  modelId: string;
  modelTitle: string;
  inputTokens: number;
  outputTokens: number;
  /** How long the simulated call streams. */
  latencyMs: number;
}

export type PlannedEnd =
  | { kind: 'complete'; finishReason: string; threadStatus: string }
  /** What the run's `AbortController.abort(reason)` is given; `null`: `abort()` with no reason (a DOMException). */
  | { kind: 'abort'; reason: string | null }
  /** The error the run fails with; `category` is what the contract says it is (docs/attribution.md, "Error categories"). */
  | { kind: 'fail'; message: string; name?: string; category: ErrorCategory };

export interface PlannedRun {
  /** What happens, in a few words. */
  label: string;
  thread: string;
  /** A person's run (`user`), or an automation's (`automation`, fired by its trigger; the owner is the user). */
  actor: { user: string } | { automation: string };
  userAgent: string | null;
  virtualMcp: string | null;
  agentId: string;
  mode: 'chat' | 'agent';
  /** The first message of a new thread: the handler also records the application event `chat_started`. */
  newThread?: boolean;
  modelCalls: PlannedModelCall[];
  tools: PlannedTool[];
  end: PlannedEnd;
  /** After the run, the user shares the thread: the application event `thread_shared`. */
  share?: boolean;
}

export interface DemoPlan {
  organizations: DemoOrganization[];
  users: DemoUser[];
  /** Each is created by its owner first: a row in `automations` and the application event `automation_created`. */
  automations: DemoAutomation[];
  /** Runs on the same thread happen in order; threads run side by side. */
  runs: PlannedRun[];
  /** Handlers that record `chat_started`, then fail: the transaction rolls back and PostHog never sees the event. */
  rolledBack: { user: string; thread: string }[];
  /** Secrets that appear in failure messages; none may reach PostHog. */
  secrets: string[];
}

const SONNET = { modelId: 'claude-sonnet-4', modelTitle: 'Claude Sonnet 4' };
const HAIKU = { modelId: 'claude-haiku-4', modelTitle: 'Claude Haiku 4' };
const GPT = { modelId: 'gpt-4.1', modelTitle: 'GPT-4.1' };
const DESKTOP = 'acme-desktop/2.4.1';
const WEB = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15';
const CLI_AGENT = 'chat-cli/0.9.3';

const ANTHROPIC_KEY = 'sk-ant-api03-DEMOx9Qk2LwTf8RbV1nZ';
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.ZGVtby11c2Vy.c2lnbmF0dXJlLWRlbW8';

function model(which: { modelId: string; modelTitle: string }, inputTokens: number, outputTokens: number, latencyMs: number): PlannedModelCall {
  return { ...which, inputTokens, outputTokens, latencyMs };
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
    modelCalls: [model(SONNET, 900, 0, 40)],
    tools: [],
    end: { kind: 'fail', message, category, ...(name ? { name } : {}) },
  };
}

export const DEMO_PLAN: DemoPlan = {
  organizations: [
    { id: 'org_acme', name: 'Acme Robotics', slug: 'acme' },
    { id: 'org_globex', name: 'Globex', slug: 'globex' },
    { id: 'org_legacy_1999' },
    { id: 'org_legacy_2011' },
  ],
  users: [
    { id: 'user_ada', organizationId: 'org_acme', email: 'ada@acme.example', name: 'Ada Lovelace' },
    { id: 'user_grace', organizationId: 'org_acme', email: 'grace@acme.example', name: 'Grace Hopper' },
    { id: 'user_linus', organizationId: 'org_globex', email: 'linus@globex.example', name: 'Linus Torvalds' },
    { id: 'user_margaret', organizationId: 'org_globex', email: 'margaret@globex.example' },
    { id: 'user_legacy_42', organizationId: 'org_acme' },
    { id: 'user_legacy_17', organizationId: 'org_legacy_1999' },
    { id: 'user_legacy_88', organizationId: 'org_legacy_2011' },
  ],
  automations: [
    { id: 'auto_daily_digest', name: 'Daily digest', ownerUserId: 'user_ada', organizationId: 'org_acme', trigger: { id: 'trg_cron_weekdays_0900', type: 'cron' } },
    { id: 'auto_pr_triage', name: 'PR triage', ownerUserId: 'user_linus', organizationId: 'org_globex', trigger: { id: 'trg_github_pull_request', type: 'webhook' } },
    { id: 'auto_churn_watch', name: null, ownerUserId: 'user_legacy_42', organizationId: 'org_acme', trigger: { id: 'trg_subscription_cancelled', type: 'event' } },
  ],
  runs: [
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
        { name: 'github.search_issues', safeName: 'github_search_issues', source: 'mcp', annotations: { readOnlyHint: true, openWorldHint: true }, latencyMs: 84, outcome: 'ok' },
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
      tools: [{ name: 'github.search_code', safeName: 'github_search_code', source: 'mcp', annotations: { readOnlyHint: true, openWorldHint: true }, latencyMs: 320, outcome: 'ok' }],
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
    fails('a revoked provider key, quoted in the error', 'thread_linus_3', 'user_linus', `401 Unauthorized from provider: invalid x-api-key ${ANTHROPIC_KEY} for this workspace`, 'auth'),
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
    {
      label: 'scheduled digest: a builtin tool and a read-only MCP tool',
      thread: 'thread_auto_digest_1',
      actor: { automation: 'auto_daily_digest' },
      userAgent: null,
      virtualMcp: 'inbox',
      agentId: 'agent_digest',
      mode: 'agent',
      modelCalls: [model(HAIKU, 4100, 300, 50), model(HAIKU, 4700, 520, 60)],
      tools: [
        { name: 'gmail.search', safeName: 'gmail_search', source: 'mcp', annotations: { readOnlyHint: true, openWorldHint: true }, latencyMs: 180, outcome: 'ok' },
        { name: 'send_email', source: 'builtin', annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true }, latencyMs: 260, outcome: 'ok' },
      ],
      end: { kind: 'complete', finishReason: 'stop', threadStatus: 'completed' },
    },
    {
      label: 'the next scheduled digest',
      thread: 'thread_auto_digest_2',
      actor: { automation: 'auto_daily_digest' },
      userAgent: null,
      virtualMcp: 'inbox',
      agentId: 'agent_digest',
      mode: 'agent',
      modelCalls: [model(HAIKU, 3900, 450, 50)],
      tools: [],
      end: { kind: 'complete', finishReason: 'stop', threadStatus: 'completed' },
    },
    {
      label: 'a pull request webhook: label it, one tool answers isError',
      thread: 'thread_auto_triage_1',
      actor: { automation: 'auto_pr_triage' },
      userAgent: 'github-hookshot/7f2c1a9',
      virtualMcp: 'engineering',
      agentId: 'agent_triage',
      mode: 'agent',
      modelCalls: [model(SONNET, 2600, 150, 60)],
      tools: [
        { name: 'github.get_pull_request', safeName: 'github_get_pull_request', source: 'mcp', annotations: { readOnlyHint: true }, latencyMs: 140, outcome: 'result-error' },
        { name: 'github.add_label', safeName: 'github_add_label', source: 'mcp', annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true }, latencyMs: 120, outcome: 'ok' },
      ],
      end: { kind: 'complete', finishReason: 'tool_calls', threadStatus: 'completed' },
    },
    {
      label: 'the owner cancels an automation run: an event, since no client saw it',
      thread: 'thread_auto_triage_2',
      actor: { automation: 'auto_pr_triage' },
      userAgent: 'github-hookshot/7f2c1a9',
      virtualMcp: 'engineering',
      agentId: 'agent_triage',
      mode: 'agent',
      modelCalls: [model(SONNET, 2400, 80, 50)],
      tools: [],
      end: { kind: 'abort', reason: 'cancelled' },
    },
    {
      label: "the automation's run timeout fires",
      thread: 'thread_auto_churn_1',
      actor: { automation: 'auto_churn_watch' },
      userAgent: null,
      virtualMcp: 'crm',
      agentId: 'agent_churn',
      mode: 'agent',
      modelCalls: [model(GPT, 6100, 700, 70)],
      tools: [{ name: 'hubspot.get_company', safeName: 'hubspot_get_company', source: 'mcp', latencyMs: 450, outcome: 'ok' }],
      end: { kind: 'abort', reason: 'timeout' },
    },
    {
      label: 'an automation over its quota',
      thread: 'thread_auto_churn_2',
      actor: { automation: 'auto_churn_watch' },
      userAgent: null,
      virtualMcp: 'crm',
      agentId: 'agent_churn',
      mode: 'agent',
      modelCalls: [],
      tools: [],
      end: { kind: 'fail', message: 'quota exceeded for organization org_acme on gpt-4.1', category: 'insufficient_funds' },
    },
  ],
  rolledBack: [{ user: 'user_grace', thread: 'thread_grace_rolled_back' }],
  secrets: [ANTHROPIC_KEY, BEARER],
};

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
  /** Runs played. */
  runs: number;
  /** Runs whose end gave no server event (a person's own cancel). */
  silentEnds: number;
  durationMs: number;
}

export interface TrafficOptions {
  plan?: DemoPlan;
  /** Outbox schema passed to `record()`. Default: the package's default. */
  schema?: string;
  /** Threads played at once. Default 4. */
  concurrency?: number;
  /** Stops the traffic between writes (the transaction in progress completes). */
  signal?: AbortSignal;
}

/** Creates the demo application's tables (idempotent). */
export async function createDemoTables(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${DEMO_APP_SCHEMA}`);
  await sql.unsafe(`CREATE TABLE IF NOT EXISTS ${DEMO_APP_SCHEMA}.messages (
    id bigserial PRIMARY KEY,
    thread_id text NOT NULL,
    author text NOT NULL,
    kind text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
  await sql.unsafe(`CREATE TABLE IF NOT EXISTS ${DEMO_APP_SCHEMA}.automations (
    id text PRIMARY KEY,
    organization_id text NOT NULL,
    owner_user_id text NOT NULL,
    name text,
    trigger_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`);
}

/** Plays `plan` against `sql` through the public API; resolves when every write has committed (or `signal` stopped it). */
export async function simulateTraffic(sql: postgres.Sql, options: TrafficOptions = {}): Promise<TrafficResult> {
  const plan = options.plan ?? DEMO_PLAN;
  const signal = options.signal;
  const recordOptions = options.schema ? { schema: options.schema } : {};
  const started = Date.now();
  const result: TrafficResult = { committed: [], transactions: 0, rolledBack: [], runs: 0, silentEnds: 0, durationMs: 0 };

  const orgs = new Map(plan.organizations.map((o) => [o.id, o]));
  const users = new Map(plan.users.map((u) => [u.id, u]));
  const automations = new Map(plan.automations.map((a) => [a.id, a]));
  const find = <T>(map: Map<string, T>, id: string, what: string): T => {
    const found = map.get(id);
    if (!found) throw new Error(`demo plan: unknown ${what} ${JSON.stringify(id)}`);
    return found;
  };
  const orgContext = (id: string): RunContext['organization'] => {
    const o = find(orgs, id, 'organization');
    return { id: o.id, name: o.name ?? null, slug: o.slug ?? null };
  };
  const userContext = (id: string) => {
    const u = find(users, id, 'user');
    return { organization: orgContext(u.organizationId), user: { id: u.id, email: u.email ?? null, name: u.name ?? null } };
  };

  /** One handler transaction: an application row and its events, committed together. */
  const write = async (row: { thread: string; author: string; kind: string; body: string }, events: (OutboxEvent | null)[]) => {
    const uuids = await sql.begin(async (tx) => {
      await tx`INSERT INTO ${tx(DEMO_APP_SCHEMA)}.messages (thread_id, author, kind, body) VALUES (${row.thread}, ${row.author}, ${row.kind}, ${row.body})`;
      return record(tx, events, recordOptions);
    });
    const committedAt = Date.now();
    result.transactions++;
    const named = events.filter((e): e is OutboxEvent => e !== null);
    uuids.forEach((uuid, i) => result.committed.push({ uuid, event: named[i]!.event, committedAt }));
  };

  const pause = (ms: number) => sleep(ms, undefined, signal ? { signal } : {});

  // Owners create their automations.
  for (const automation of plan.automations) {
    if (signal?.aborted) break;
    const context = userContext(automation.ownerUserId);
    const uuids = await sql.begin(async (tx) => {
      await tx`INSERT INTO ${tx(DEMO_APP_SCHEMA)}.automations (id, organization_id, owner_user_id, name, trigger_id)
        VALUES (${automation.id}, ${automation.organizationId}, ${automation.ownerUserId}, ${automation.name}, ${automation.trigger.id})
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, trigger_id = EXCLUDED.trigger_id`;
      return record(tx, attributedEvent(context, 'automation_created', { created_automation_id: automation.id, trigger_type: automation.trigger.type }), recordOptions);
    });
    result.transactions++;
    const committedAt = Date.now();
    for (const uuid of uuids) result.committed.push({ uuid, event: 'automation_created', committedAt });
  }

  // Handlers that fail after recording: the rollback takes the event with it.
  for (const { user, thread } of plan.rolledBack) {
    if (signal?.aborted) break;
    const context = { ...userContext(user), threadId: thread };
    let written: string[] = [];
    await sql
      .begin(async (tx) => {
        await tx`INSERT INTO ${tx(DEMO_APP_SCHEMA)}.messages (thread_id, author, kind, body) VALUES (${thread}, ${user}, 'user', 'hello?')`;
        written = await record(tx, attributedEvent(context, 'chat_started', { source: 'sidebar' }), recordOptions);
        throw new Error('simulated handler failure after record(): the message was too long');
      })
      .catch(() => undefined);
    result.rolledBack.push(...written);
  }

  const playRun = async (run: PlannedRun) => {
    let context: RunContext;
    let author: string;
    if ('automation' in run.actor) {
      const automation = find(automations, run.actor.automation, 'automation');
      // An automation run knows its owner's id, not the owner's email or name.
      context = {
        organization: orgContext(automation.organizationId),
        user: { id: automation.ownerUserId },
        automation: { id: automation.id, name: automation.name, triggerId: automation.trigger.id },
      };
      author = `automation_${automation.id}`;
    } else {
      context = userContext(run.actor.user);
      author = run.actor.user;
    }
    context = { ...context, virtualMcpName: run.virtualMcp, threadId: run.thread, userAgent: run.userAgent };

    const tracker = startRun(context, { agentId: run.agentId, mode: run.mode, credentialId: `cred_${run.agentId}`, isResume: false });
    result.runs++;
    const first = run.newThread ? [attributedEvent(context, 'chat_started', { source: 'composer' }), tracker.started] : [tracker.started];
    await write({ thread: run.thread, author, kind: 'automation' in run.actor ? 'trigger' : 'user', body: run.label }, first);

    // Model calls stream and report usage; tool calls are written as they finish.
    const steps = Math.max(run.modelCalls.length, run.tools.length);
    for (let i = 0; i < steps; i++) {
      const call = run.modelCalls[i];
      if (call) {
        await pause(call.latencyMs);
        tracker.modelCall({ modelId: call.modelId, modelTitle: call.modelTitle, inputTokens: call.inputTokens, outputTokens: call.outputTokens });
      }
      const tool = run.tools[i];
      if (tool) {
        await pause(tool.latencyMs);
        const base = { toolName: tool.name, toolSafeName: tool.safeName ?? null, source: tool.source, annotations: tool.annotations ?? null, latencyMs: tool.latencyMs };
        const event =
          tool.outcome === 'throws'
            ? tracker.toolCalled({ ...base, error: new Error(`${tool.name}: connect ECONNREFUSED 10.0.3.7:5432`) })
            : tracker.toolCalled({ ...base, result: { content: [{ type: 'text', text: 'ok' }], isError: tool.outcome === 'result-error' } });
        await write({ thread: run.thread, author, kind: 'tool', body: `${tool.name}: ${tool.outcome}` }, [event]);
      }
    }

    const end = run.end;
    if (end.kind === 'complete') {
      await write({ thread: run.thread, author: run.agentId, kind: 'assistant', body: 'done' }, [tracker.complete({ finishReason: end.finishReason, threadStatus: end.threadStatus })]);
    } else if (end.kind === 'abort') {
      const controller = new AbortController();
      if (end.reason === null) controller.abort();
      else controller.abort(end.reason);
      const event = tracker.abort(controller.signal.reason);
      if (event === null) result.silentEnds++;
      await write({ thread: run.thread, author: run.agentId, kind: 'status', body: `aborted: ${String(end.reason)}` }, [event]);
    } else {
      const error = new Error(end.message);
      if (end.name) error.name = end.name;
      await write({ thread: run.thread, author: run.agentId, kind: 'status', body: 'failed' }, [tracker.fail(error)]);
    }
    if (run.share) {
      await write({ thread: run.thread, author, kind: 'share', body: 'shared with the organization' }, [attributedEvent(context, 'thread_shared', { visibility: 'organization' })]);
    }
  };

  // Threads side by side, each thread's runs in order.
  const threads = [...Map.groupBy(plan.runs, (run) => run.thread).values()];
  let next = 0;
  const lane = async () => {
    while (next < threads.length && !signal?.aborted) {
      const runs = threads[next++]!;
      for (const run of runs) {
        if (signal?.aborted) return;
        await playRun(run);
      }
    }
  };
  // Every lane settles before this returns, so nothing writes on `sql` afterwards.
  const lanes = await Promise.allSettled(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, lane));
  const failed = lanes.find((l): l is PromiseRejectedResult => l.status === 'rejected');
  if (failed && !signal?.aborted) throw failed.reason;
  result.durationMs = Date.now() - started;
  return result;
}
