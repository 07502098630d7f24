/**
 * `POSTHOG_CAPTURE_MODE=v1` in the worker's environment (posthog-node's own switch to Capture V1, whose
 * per-event verdicts the worker does not read yet): the worker still delivers through Capture v0 `/batch/`,
 * each event once, and says at start that it ignores the variable. Before, posthog-node sent to the V1 path
 * and the worker took every answer for a failure.
 */
import { afterEach, expect, it } from 'vitest';
import { attributedEvent, record } from '../../src/index.ts';
import { inProcessWorkers, outboxCount, until, type WorkerFixture } from '../support/worker.ts';

let fixture: WorkerFixture;
const start = inProcessWorkers('phc_mode', (f) => (fixture = f));
const saved = process.env.POSTHOG_CAPTURE_MODE;
afterEach(() => {
  if (saved === undefined) delete process.env.POSTHOG_CAPTURE_MODE;
  else process.env.POSTHOG_CAPTURE_MODE = saved;
});

it('POSTHOG_CAPTURE_MODE=v1: delivered through /batch/ once each, the variable left as it was, a warning at start', async () => {
  process.env.POSTHOG_CAPTURE_MODE = 'v1';
  const warnings: string[] = [];
  const logger = { info() {}, error() {}, warn: (_o: object, message?: string) => void warnings.push(message ?? '') };
  const context = { organization: { id: 'org_1' }, user: { id: 'user_1' } };
  const uuids = await record(
    fixture.db.sql,
    Array.from({ length: 20 }, (_, i) => attributedEvent(context, 'chat_message_sent', { i })),
  );
  await start({ logger });
  await until(
    () => outboxCount(fixture.db.sql),
    (n) => n === 0,
    { what: 'the outbox to empty' },
  );
  const counts = fixture.capture.countsByUuid();
  expect(uuids.map((uuid) => counts.get(uuid))).toEqual(uuids.map(() => 1));
  expect(new Set(fixture.capture.requests.map((r) => r.path))).toEqual(new Set(['/batch/']));
  expect(process.env.POSTHOG_CAPTURE_MODE).toBe('v1');
  expect(warnings.filter((w) => w.startsWith('POSTHOG_CAPTURE_MODE is ignored by the worker'))).toHaveLength(1);
});
