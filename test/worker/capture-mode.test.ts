/**
 * Which capture protocol a worker speaks: the `posthog.captureMode` setting (default v0), which
 * `POSTHOG_CAPTURE_MODE` (posthog-node's own switch) gives when the option is unset. Before 0.x the variable was
 * ignored (posthog-node pinned to v0, a warning at start); now `v1` selects Capture V1, and each client is built
 * in the chosen mode whatever the variable says, the variable left as it was.
 */
import { afterEach, expect, it } from 'vitest';
import { attributedEvent, record } from '../../src/index.ts';
import { inProcessWorkers, type WorkerFixture, outboxEmpty } from '../support/worker.ts';

let fixture: WorkerFixture;
const start = inProcessWorkers('phc_mode', (f) => (fixture = f));
const saved = process.env.POSTHOG_CAPTURE_MODE;
afterEach(() => {
  if (saved === undefined) delete process.env.POSTHOG_CAPTURE_MODE;
  else process.env.POSTHOG_CAPTURE_MODE = saved;
});

const context = { organization: { id: 'org_1' }, user: { id: 'user_1' } };

/** Records 20 events, starts a worker, waits for the outbox to empty; returns the events' uuids and what the worker warned. */
async function deliver(options: Parameters<typeof start>[0] = {}) {
  const warnings: string[] = [];
  const logger = { info() {}, error() {}, warn: (_o: object, message?: string) => void warnings.push(message ?? '') };
  const uuids = await record(
    fixture.db.sql,
    Array.from({ length: 20 }, (_, i) => attributedEvent(context, 'chat_message_sent', { i })),
  );
  await start({ logger, ...options });
  await outboxEmpty(fixture.db.sql, { what: 'the outbox to empty' });
  const counts = fixture.capture.countsByUuid();
  expect(uuids.map((uuid) => counts.get(uuid))).toEqual(uuids.map(() => 1));
  return { warnings, paths: new Set(fixture.capture.requests.map((r) => r.path)) };
}

it('POSTHOG_CAPTURE_MODE unset: v0, delivered through /batch/ once each', async () => {
  delete process.env.POSTHOG_CAPTURE_MODE;
  const { warnings, paths } = await deliver();
  expect(paths).toEqual(new Set(['/batch/']));
  expect(warnings).toEqual([]);
});

it('POSTHOG_CAPTURE_MODE=v1: the setting, delivered through Capture V1 once each, the variable left as it was, no warning', async () => {
  process.env.POSTHOG_CAPTURE_MODE = 'v1';
  const { warnings, paths } = await deliver();
  expect(paths).toEqual(new Set(['/i/v1/analytics/events']));
  expect(process.env.POSTHOG_CAPTURE_MODE).toBe('v1');
  expect(warnings).toEqual([]);
});

it('captureMode v0 given, POSTHOG_CAPTURE_MODE=v1 in the environment: the option wins, /batch/ (posthog-node kept on v0)', async () => {
  process.env.POSTHOG_CAPTURE_MODE = 'v1';
  const { paths } = await deliver({ posthog: { apiKey: 'phc_mode', host: fixture.capture.url, captureMode: 'v0' } });
  expect(paths).toEqual(new Set(['/batch/']));
  expect(process.env.POSTHOG_CAPTURE_MODE).toBe('v1');
});

it('captureMode v1 given, the variable unset: Capture V1, the variable still unset', async () => {
  delete process.env.POSTHOG_CAPTURE_MODE;
  const { paths } = await deliver({ posthog: { apiKey: 'phc_mode', host: fixture.capture.url, captureMode: 'v1' } });
  expect(paths).toEqual(new Set(['/i/v1/analytics/events']));
  expect(process.env.POSTHOG_CAPTURE_MODE).toBeUndefined();
});

it('POSTHOG_CAPTURE_MODE set to an unknown value: startWorker refuses it, naming the setting', async () => {
  process.env.POSTHOG_CAPTURE_MODE = 'v2';
  await expect(start()).rejects.toMatchObject({ field: 'posthog.captureMode', message: 'posthog.captureMode: must be one of v0, v1, got "v2"' });
});
