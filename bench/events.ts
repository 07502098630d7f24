/**
 * The events every benchmark sends: built by the project's own builders (the run tracker, `toolCalled`,
 * `attributedEvent`), so their properties, groups and profile snapshots are what a real handler records.
 * A fixed set of templates (deterministic: users, organizations, automations, tools) is reused; each
 * copy gets its own uuid and message id.
 */
// The builders' own modules rather than src/index.ts: the index also loads drizzle-orm (the outbox table
// declarations), which costs a design child ~150 MB of RSS on Node 24 and nothing here needs it.
import type { RunContext } from '../src/attribution/context.ts';
import { attributedEvent } from '../src/attribution/events.ts';
import { startRun } from '../src/attribution/run.ts';
import type { OutboxEvent } from '../src/record/event.ts';

export const USERS = 2_000;
export const ORGANIZATIONS = 200;
export const AUTOMATIONS = 100;
/** How many distinct templates; a backlog row `i` uses template `i % TEMPLATES`. */
export const TEMPLATES = 1_000;

const AGENTS = ['agent_support', 'agent_research', 'agent_sales', 'agent_ops'];
const MODELS = [
  ['claude-sonnet-4-5', 'Claude Sonnet 4.5'],
  ['gpt-5', 'GPT-5'],
  ['gemini-2.5-pro', 'Gemini 2.5 Pro'],
] as const;
const TOOLS = ['search_docs', 'create_ticket', 'query_crm', 'send_email', 'read_file'];
const USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'acme-desktop/2.14.1 (darwin; arm64)',
  'acme-cli/0.9.3 node/24.1.0',
];

export function contextFor(i: number): RunContext {
  const user = i % USERS;
  const org = user % ORGANIZATIONS;
  const automation = i % 10 === 0 ? (i / 10) % AUTOMATIONS : undefined;
  return {
    organization: { id: `org_${org}`, name: `Organization ${org}`, slug: `organization-${org}` },
    user: { id: `user_${user}`, email: `person${user}@example.com`, name: `Person ${user}` },
    automation: automation === undefined ? null : { id: `auto_${automation}`, name: `Nightly digest ${automation}`, triggerId: `trg_${automation}` },
    virtualMcpName: `workspace-${org % 7}`,
    threadId: `thr_${Math.floor(i / 4)}`,
    userAgent: USER_AGENTS[i % USER_AGENTS.length]!,
  };
}

/** Template `i`: one of a chat run's events (started, tool call, completed) or an application event. */
export function template(i: number): OutboxEvent {
  const context = contextFor(i);
  const [modelId, modelTitle] = MODELS[i % MODELS.length]!;
  const run = startRun(
    context,
    { agentId: AGENTS[i % AGENTS.length]!, mode: i % 3 === 0 ? 'agent' : 'chat', modelId, modelTitle },
    { now: () => 1_750_000_000_000 + i },
  );
  switch (i % 4) {
    case 0:
      return run.started;
    case 1:
      return run.toolCalled({
        toolName: TOOLS[i % TOOLS.length]!,
        source: i % 2 === 0 ? 'mcp' : 'builtin',
        annotations: { readOnlyHint: i % 5 !== 0, openWorldHint: i % 7 === 0 },
        latencyMs: 40 + (i % 900),
        result: { content: [] },
      });
    case 2:
      run.modelCall({ modelId, modelTitle, inputTokens: 1_200 + (i % 3_000), outputTokens: 150 + (i % 800) });
      return run.complete({ finishReason: 'stop', threadStatus: 'completed' });
    default:
      return attributedEvent(context, 'chat_message_sent', { message_id: `msg_${i}`, characters: 80 + (i % 2_000), has_attachments: i % 9 === 0 });
  }
}

let cached: OutboxEvent[] | undefined;
export function templates(): OutboxEvent[] {
  cached ??= Array.from({ length: TEMPLATES }, (_, i) => template(i));
  return cached;
}

/** An event as it is sent to PostHog (the fields a drain reads from an outbox row): the worker's own type. */
import type { WireEvent } from '../worker/send/sender.ts';

export type { WireEvent };

/**
 * `count` events in memory, as the backlog holds them (template `i % TEMPLATES`, a fresh uuid, `bench_seq`
 * = i), for the designs that need no database.
 */
export function wireEvents(count: number): WireEvent[] {
  const list = templates();
  const start = Date.now() - count;
  const events: WireEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const t = list[i % list.length]!;
    events[i] = {
      uuid: crypto.randomUUID(),
      event: t.event,
      distinctId: t.distinctId,
      properties: { ...t.properties, bench_seq: i },
      groups: t.groups,
      timestamp: new Date(start + i),
    };
  }
  return events;
}
