/**
 * Write cost: what analytics adds to a typical handler transaction. The handler (drizzle over postgres.js,
 * as the README's examples) inserts a chat-message row and, depending on the variant, records nothing, one
 * or five outbox events (`record(tx, ...)`: five events of one call are one row, a pack), or sends one
 * pg-boss job per event in the same transaction (`boss.send(..., { db: fromDrizzle(tx, sql) })`), the naive
 * alternative; and one or five events recorded alongside the chat-message insert (`Promise.all`, one round
 * trip for both). Events are built per transaction with `attributedEvent`, as a handler would. The two `a run`
 * variants record what a whole chat run of two model calls and a tool call gives `record()` in one call, built
 * by the run tracker: its product events (started, tool_called, completed), and with LLM analytics on also
 * its two `$ai_generation`, one `$ai_span` and its `$ai_trace` (docs/attribution.md, "LLM analytics").
 *
 * Each variant runs on one connection and on 16 concurrent connections; variants take turns in short
 * slices (several rounds) so that drift (autovacuum, checkpoints, a noisy neighbour) hits them alike.
 * Reports median and p99 latency per transaction and transactions per second.
 */
import { sql as drizzleSql } from 'drizzle-orm';
import { bigserial, pgSchema, text, timestamp } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/postgres-js';
import { fromDrizzle, type PgBoss } from 'pg-boss';
import postgres from 'postgres';
import { attributedEvent, type OutboxEvent, record, type RunOptions, startRun } from '../src/index.ts';
import { contextFor } from './events.ts';
import { cpus } from 'node:os';
import { now } from './lib/clock.ts';
import { CpuMeter, machineCpu, postgresCpu, processCpu } from './lib/cpu.ts';
import { percentile } from './lib/stats.ts';

const chatMessages = pgSchema('bench').table('chat_messages', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  threadId: text('thread_id').notNull(),
  userId: text('user_id').notNull(),
  role: text('role').notNull(),
  content: text('content').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const WRITE_QUEUE = 'bench.write-cost';

export const VARIANTS = [
  'no analytics',
  '1 outbox event',
  '1 outbox event, pipelined',
  '5 outbox events',
  '5 outbox events, pipelined',
  'a run: 3 events',
  'a run: 7 events, LLM analytics',
  '1 boss.send()',
  '5 boss.send()',
] as const;

export type Variant = (typeof VARIANTS)[number];

export interface WriteCostRow {
  variant: Variant;
  connections: number;
  transactions: number;
  medianMs: number;
  p99Ms: number;
  txPerSecond: number;
}

export interface WriteCostOptions {
  url: string;
  /** PID of the PostgreSQL postmaster (for the "other load" figure). */
  postmasterPid: number;
  boss: PgBoss;
  connections: number[];
  /** Measured seconds per variant and connection count (split over `rounds`). */
  seconds: number;
  rounds: number;
}

const LLM: RunOptions = { llmAnalytics: true };

/** A whole chat run's events as the run tracker gives them: two model calls, a tool call, the completion. */
function runEvents(context: ReturnType<typeof contextFor>, options: RunOptions): OutboxEvent[] {
  const run = startRun(context, { agentId: 'agent_bench', modelId: 'claude-sonnet' }, options);
  const first = run.modelCall({ modelId: 'claude-sonnet', provider: 'anthropic', inputTokens: 1200, outputTokens: 300, latencyMs: 1500 });
  const tool = run.toolCalled({ toolName: 'search', source: 'mcp', latencyMs: 120, result: { ok: true } });
  const second = run.modelCall({ inputTokens: 1600, outputTokens: 420, latencyMs: 2100 });
  return [run.started, first, tool, second, run.complete()].flat().filter((e): e is OutboxEvent => e !== null);
}

/** A chat message of about 1 KB. */
const CONTENT = 'Could you summarise the last three support tickets from this customer and draft a reply? '.repeat(11);

export interface WriteCost {
  rows: WriteCostRow[];
  /** Share of the machine's cores used by anything but the bench and PostgreSQL while measuring: noise. */
  otherLoad: number;
}

export async function measureWriteCost(options: WriteCostOptions): Promise<WriteCost> {
  if (!(await options.boss.getQueue(WRITE_QUEUE))) await options.boss.createQueue(WRITE_QUEUE, { retryLimit: 0 });
  const rows: WriteCostRow[] = [];
  const meter = new CpuMeter({ bench: () => processCpu(process.pid), postgres: () => postgresCpu(options.postmasterPid), machine: () => machineCpu() });
  const before = await meter.sample();
  const startedAt = now();
  for (const connections of options.connections) {
    const client = postgres(options.url, { max: connections, onnotice: () => {} });
    const db = drizzle(client);
    type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0];
    let seq = 0;
    const handler = (variant: Variant) => async (tx: Tx) => {
      const i = seq++;
      const context = contextFor(i);
      const insert = tx.insert(chatMessages).values({ threadId: context.threadId!, userId: context.user.id, role: 'user', content: CONTENT });
      const count = variant.startsWith('5') ? 5 : 1;
      const events = () =>
        Array.from({ length: count }, (_, k) => attributedEvent(context, 'chat_message_sent', { message_id: `msg_${i}_${k}`, characters: CONTENT.length }));
      if (variant.startsWith('a run')) {
        await insert;
        await record(tx, runEvents(context, variant.endsWith('LLM analytics') ? LLM : {}));
        return;
      }
      if (variant.endsWith('pipelined')) {
        // Both statements go out before either answer comes back (postgres.js pipelines on the connection).
        await Promise.all([insert, record(tx, events())]);
        return;
      }
      await insert;
      if (variant === 'no analytics') return;
      if (variant.includes('outbox event')) {
        await record(tx, events());
      } else {
        const adapter = fromDrizzle(tx, drizzleSql);
        for (const event of events()) await options.boss.send(WRITE_QUEUE, event, { db: adapter });
      }
    };
    const latencies = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    const slice = (variant: Variant, ms: number, keep: boolean) => timed(handler(variant), ms, keep, variant);
    const timed = async (run: ReturnType<typeof handler>, ms: number, keep: boolean, variant: Variant) => {
      const until = now() + ms;
      await Promise.all(
        Array.from({ length: connections }, async () => {
          while (now() < until) {
            const started = now();
            await db.transaction(run);
            if (keep) latencies.get(variant)!.push(now() - started);
          }
        }),
      );
    };
    try {
      for (const variant of VARIANTS) await slice(variant, 300, false); // warm-up: JIT, plans, connections
      const sliceMs = (options.seconds * 1000) / options.rounds;
      for (let round = 0; round < options.rounds; round++) for (const variant of VARIANTS) await slice(variant, sliceMs, true);
    } finally {
      await client.end({ timeout: 5 });
    }
    for (const variant of VARIANTS) {
      const list = latencies.get(variant)!.sort((a, b) => a - b);
      rows.push({
        variant,
        connections,
        transactions: list.length,
        medianMs: percentile(list, 0.5),
        p99Ms: percentile(list, 0.99),
        txPerSecond: list.length / options.seconds,
      });
    }
  }
  const cpu = await meter.since(before);
  const seconds = (now() - startedAt) / 1000;
  const otherLoad = Math.max(0, (cpu.machine! - cpu.bench! - cpu.postgres!) / (seconds * cpus().length));
  return { rows, otherLoad };
}
