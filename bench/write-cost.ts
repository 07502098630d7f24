/**
 * Write cost: what analytics adds to a typical handler transaction. The handler (drizzle over postgres.js,
 * as the README's examples) inserts a chat-message row and, depending on the variant, records nothing, one
 * or five outbox events (`record(tx, ...)`: five events of one call are one row, a pack), or sends one
 * pg-boss job per event in the same transaction (`boss.send(..., { db: fromDrizzle(tx, sql) })`), the naive
 * alternative; and one or five events recorded alongside the chat-message insert (`Promise.all`, one round
 * trip for both). Events are built per
 * transaction with `attributedEvent`, as a handler would.
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
import { attributedEvent, record } from '../src/index.ts';
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
  '1 outbox event, NOTIFY trigger',
  '5 outbox events, NOTIFY trigger',
  '1 boss.send()',
  '5 boss.send()',
] as const;

/**
 * The wake-up an earlier pre-release installed (dropped since): a statement-level trigger that
 * NOTIFYs at commit. Installed only around the slices of the `NOTIFY trigger` variants.
 */
const NOTIFY_ON = `CREATE OR REPLACE FUNCTION bench.notify_worker() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('posthog_outbox', ''); RETURN NULL; END; $$;
CREATE TRIGGER bench_notify_worker AFTER INSERT ON posthog_outbox.outbox FOR EACH STATEMENT EXECUTE FUNCTION bench.notify_worker();`;
const NOTIFY_OFF = `DROP TRIGGER IF EXISTS bench_notify_worker ON posthog_outbox.outbox`;
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
    const slice = async (variant: Variant, ms: number, keep: boolean) => {
      const run = handler(variant);
      const notify = variant.endsWith('NOTIFY trigger');
      if (notify) await client.unsafe(NOTIFY_ON);
      try {
        await timed(run, ms, keep, variant);
      } finally {
        if (notify) await client.unsafe(NOTIFY_OFF);
      }
    };
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
