/**
 * Property-based: random contexts and properties through the public API (attributedEvent + record), 10k
 * cases. Each case either records a row whose properties are exactly the JSON form of what was passed, or
 * throws OutboxError with nothing written and the caller's transaction still usable. Never another error.
 * Then the worker delivers every accepted row, and the capture endpoint must accept each one and receive
 * exactly the JSON that was recorded: no row may poison the worker.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, OutboxError, record, type RunContext } from '../../src/index.ts';
import { startWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, deadLetterRows, outboxCount, outboxEmpty } from '../support/worker.ts';
import { canonical } from '../support/json.ts';

const CASES = 10_000;

let db: TestDatabase;
let capture: CaptureServer;
beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_prop' });
});
afterAll(async () => {
  await capture?.close();
  await db?.drop();
});

function cyclic(): object {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = { parent: a };
  return a;
}

function deep(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { v };
  return v;
}

const weird = fc.constantFrom<unknown>(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
  10n,
  undefined,
  '\ud800',
  'tail \udfff',
  'nul \u0000 inside',
  '',
  'emoji 😀 ok',
  new Date('2026-11-26T00:00:00.000Z'),
  new Date(Number.NaN),
  () => 1,
  Symbol('s'),
  new Map([['a', 1]]),
  new Set([1]),
  Object.create(null),
  // biome-ignore lint/suspicious/noSparseArray: the hole is the case under test
  [1, , 3],
);
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  {
    weight: 4,
    arbitrary: fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withDate: true,
      withNullPrototype: true,
      withMap: true,
      withSet: true,
      withBoxedValues: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
    }),
  },
  { weight: 3, arbitrary: weird },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 70 }).map(deep) },
  { weight: 1, arbitrary: fc.constant(null).map(cyclic) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 50 }) },
);
const key = fc.oneof(
  { weight: 8, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '$set', 'user_id', '$groups', 'a.b', '', '\ud800'),
  },
);
// Half clean JSON, half anything; mostly small property bags; about one case in 300 carries a string near PostHog's 1 MB per-event limit.
const properties = fc.oneof(
  {
    weight: 150,
    arbitrary: fc.dictionary(
      fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !['user_id', '$groups'].includes(k)),
      fc.jsonValue({ maxDepth: 4 }),
      { maxKeys: 8 },
    ),
  },
  { weight: 150, arbitrary: fc.dictionary(key, value, { maxKeys: 6, noNullPrototype: false }) },
  { weight: 1, arbitrary: fc.integer({ min: 950_000, max: 1_050_000 }).map((n) => ({ blob: 'x'.repeat(n) })) },
);
const id = fc.oneof(
  { weight: 40, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('', '   ', null, undefined, 42, 'x'.repeat(201), '\udc00', 'a\u0000b', 'x'.repeat(200)) },
);
const optional = fc.option(
  fc.oneof({ weight: 40, arbitrary: fc.string({ maxLength: 30 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(7, '\ud800', {}) }),
  { nil: undefined },
);
const context = fc.record(
  {
    organization: fc.record({ id, name: optional, slug: optional }, { requiredKeys: ['id'] }),
    user: fc.record({ id, email: optional, name: optional }, { requiredKeys: ['id'] }),
    automation: fc.option(fc.record({ id, name: optional, triggerId: optional }, { requiredKeys: ['id'] }), { nil: undefined }),
    virtualMcpName: optional,
    threadId: optional,
    userAgent: optional,
  },
  { requiredKeys: ['user'] },
);
const eventName = fc.oneof(
  { weight: 10, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('', 'chat_message_completed', '$identify', '$pageview', 'x'.repeat(201), 5) },
);

it(`${CASES} random events: recorded exactly, or refused with OutboxError and nothing written; every recorded one is delivered as recorded`, async () => {
  const accepted = new Map<string, string>(); // uuid -> canonical JSON of the properties recorded
  const outcomes = { recorded: 0, refused: 0 };
  /** Thrown to roll a refused case's transaction back once it has been checked. */
  const refusedCase = new Error('refused: roll back');

  await fc.assert(
    fc.asyncProperty(context, eventName, properties, async (ctx, name, props) => {
      const recorded = await db.sql
        .begin(async (tx) => {
          const count = async () => (await tx<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`)[0]!.n;
          const before = await count();
          let uuids: string[];
          let expected: string;
          let sent = '';
          try {
            const event = attributedEvent(ctx as RunContext, name as string, props as Record<string, unknown>);
            uuids = await record(tx, event);
            // only now: a refused event may not even have a JSON form
            sent = JSON.stringify(event.properties);
            expected = canonical(JSON.parse(sent));
          } catch (error) {
            if (!(error instanceof OutboxError)) throw error; // any other error is a bug
            expect(error.field).toBeTruthy();
            // nothing written, and the transaction is still usable (no SQL ran)
            expect(await count()).toBe(before);
            throw refusedCase;
          }
          expect(uuids).toHaveLength(1);
          const [row] = await tx<{ uuid: string; properties: unknown; text: string }[]>`
            SELECT uuid, properties, properties::text AS text FROM posthog_outbox.outbox WHERE uuid = ${uuids[0]!}`;
          expect(row!.uuid).toBe(uuids[0]);
          if (canonical(row!.properties) !== expected) {
            // Seen about once in 100,000 events in a long process (2026-12-07): the JavaScript comparison of keys
            // '"' and '\\' disagreed while the same pair compared equal in a fresh process. PostgreSQL's own jsonb
            // equality decides whether what it holds is what was sent; the pair is printed either way.
            const [same] = await tx<{ equal: boolean }[]>`SELECT ${sent}::jsonb = properties AS equal FROM posthog_outbox.outbox WHERE uuid = ${uuids[0]!}`;
            console.log(JSON.stringify({ sent, stored: row!.text, parsed: canonical(row!.properties), equalInPostgres: same!.equal }));
            expect(same!.equal).toBe(true);
          } else {
            expect(canonical(row!.properties)).toBe(expected);
          }
          return [uuids[0]!, expected] as const;
        })
        .catch((error: unknown) => {
          if (error === refusedCase) return null;
          throw error;
        });
      if (recorded) {
        accepted.set(recorded[0], recorded[1]);
        outcomes.recorded++;
      } else {
        outcomes.refused++;
      }
    }),
    { numRuns: CASES },
  );
  // Both outcomes must be well represented, or the generators are not testing what they claim.
  expect(outcomes.recorded).toBeGreaterThan(CASES * 0.2);
  expect(outcomes.refused).toBeGreaterThan(CASES * 0.2);
  expect(await outboxCount(db.sql)).toBe(accepted.size);

  const worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_prop', host: capture.url }, backoff: { baseMs: 100, maxMs: 1000 } });
  try {
    await outboxEmpty(db.sql, { timeoutMs: 120_000, what: 'every recorded event to be delivered' });
  } finally {
    await worker.stop(10_000);
  }
  expect(await deadLetterRows(db.sql)).toEqual([]);
  const received = new Map(capture.events.filter((e) => accepted.has(e.uuid!)).map((e) => [e.uuid!, e]));
  expect(received.size).toBe(accepted.size);
  for (const [uuid, expected] of accepted) {
    const event = received.get(uuid);
    expect(event, uuid).toBeDefined();
    const sentKeys = Object.keys(JSON.parse(expected) as object);
    const got = Object.fromEntries(sentKeys.map((k) => [k, event!.properties[k]]));
    expect(canonical(got)).toBe(expected);
  }
  console.log(`property run: ${CASES} cases, ${outcomes.recorded} recorded and delivered as recorded, ${outcomes.refused} refused with OutboxError`);
}, 600_000);
