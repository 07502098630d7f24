// docs/attribution.md, "LLM analytics": the $ai_* events' outbox rows name the run's user, automation and
// organization with empty snapshots, so `forget` erases them with the entity's other events.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type OutboxEvent, record, type RunContext, startRun } from '../../src/index.ts';
import { forget } from '../../src/ops/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { queuedEvents } from '../support/queued.ts';

const digest: RunContext = {
  organization: { id: 'org_1', name: 'Acme' },
  user: { id: 'owner_1', email: 'owner@example.com' },
  automation: { id: 'auto_1', name: 'Digest' },
  threadId: 'thread_1',
};

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox`;
});

/** An automation run with LLM analytics: started, a generation, a tool call and its span, the failure and its trace. */
function automationRun(): OutboxEvent[] {
  const run = startRun(digest, { modelId: 'm' }, { llmAnalytics: true });
  return [run.started, run.modelCall({ inputTokens: 1 }), ...run.toolCalled({ toolName: 't', source: 'builtin', latencyMs: 1, result: {} }), ...run.fail('x')];
}

describe('the outbox rows of $ai_* events', () => {
  it("name the run's entities with empty snapshots; the run's own events keep the profiles", async () => {
    await record(db.sql, automationRun());
    const rows = await queuedEvents(db.sql);
    for (const row of rows) {
      expect(row).toMatchObject({ userId: 'owner_1', automationId: 'auto_1', organizationId: 'org_1' });
      if (row.event.startsWith('$ai_')) expect([row.userProfile, row.automationProfile, row.organizationProfile]).toEqual([{}, {}, {}]);
      else expect(row.userProfile).toEqual({ email: 'owner@example.com' });
    }
    expect(rows.map((r) => r.event)).toEqual(['chat_message_started', '$ai_generation', 'tool_called', '$ai_span', 'chat_message_failed', '$ai_trace']);
  });

  it.each([
    ['user', 'owner_1'],
    ['automation', 'auto_1'],
    ['organization', 'org_1'],
  ] as const)('forget --%s erases them with the run', async (kind, id) => {
    await record(db.sql, automationRun());
    const [forgotten] = await forget(db.sql, [{ kind, id }]);
    expect(forgotten).toMatchObject({ kind, id, queued: 6 });
    expect(await queuedEvents(db.sql)).toEqual([]);
  });
});
