/**
 * Secrets never leak: the PostHog key, the database password and users' email addresses must not appear in
 * the worker's logs (stdout and stderr of the real CLI process), in its error messages, or in the
 * dead-letter table's reason column, whatever happens: normal delivery, a wrong key (401), a poison event
 * (400 with PostHog's answer), an unreachable database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { CLI, runCli } from '../support/cli.ts';
import { createWorkerDatabase, until, outboxEmpty } from '../support/worker.ts';

const KEY = `phc_${randomBytes(16).toString('hex')}`;
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const ROLE = `secrets_${randomBytes(4).toString('hex')}`;
const EMAIL = 'grace.hopper@navy.example';
const SECRETS = [KEY, PASSWORD, EMAIL];

let db: TestDatabase;
let capture: CaptureServer;
let url: string;

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: KEY });
  await db.sql.unsafe(`CREATE ROLE ${ROLE} LOGIN SUPERUSER PASSWORD '${PASSWORD}'`);
  const u = new URL(db.url);
  u.username = ROLE;
  u.password = PASSWORD;
  url = u.toString();
});
afterAll(async () => {
  await capture?.close();
  if (db) {
    const admin = db.url.replace(`/${db.name}`, '/postgres');
    await db.drop();
    const { default: postgres } = await import('postgres');
    const sql = postgres(admin, { max: 1, onnotice: () => {} });
    await sql.unsafe(`DROP ROLE IF EXISTS ${ROLE}`);
    await sql.end();
  }
});

function expectNoSecrets(text: string, where: string) {
  for (const secret of SECRETS)
    expect(text.includes(secret), `${where} contains ${secret === KEY ? 'the API key' : secret === PASSWORD ? 'the password' : 'an email'}`).toBe(false);
}

function startWorkerProcess(key: string): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(process.execPath, [CLI, 'worker', '--request-timeout', '2s'], {
    env: { ...process.env, DATABASE_URL: url, POSTHOG_API_KEY: key, POSTHOG_HOST: capture.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    child,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const context = { organization: { id: 'org_1', name: 'Navy' }, user: { id: 'user_1', email: EMAIL, name: 'Grace' } };

it('delivery, a wrong key and a poison event: no secret in logs or dead-letter reasons', async () => {
  // A poison event whose own properties hold the email: PostHog's answer may quote the event.
  capture.rejectEventsWhere((e) => e.event === 'poison', { message: `invalid event for ${EMAIL}` });
  await record(db.sql, [attributedEvent(context, 'chat_started', { contact: EMAIL }), attributedEvent(context, 'poison', { contact: EMAIL })]);

  // 1. A wrong key: PostHog answers 401; the worker retries and logs it.
  const wrong = startWorkerProcess(`phc_wrong_${KEY.slice(4)}`);
  await capture.waitForRequests((r) => r.some((x) => x.status === 401), { timeoutMs: 15_000, what: 'a 401' });
  await until(
    () => wrong.output(),
    (out) => /"retried":[1-9]/.test(out),
    { what: 'the failed pass to be logged' },
  );
  await wrong.stop();
  expectNoSecrets(wrong.output(), 'worker output with a wrong key');
  expect(wrong.output()).toMatch(/"error":"PostHog answered HTTP 401/); // the operator sees why

  // 2. The right key: delivered, the poison event dead-lettered, identify sent (with the email, to PostHog only).
  await db.sql`UPDATE posthog_outbox.outbox SET next_attempt_at = now()`;
  const worker = startWorkerProcess(KEY);
  await outboxEmpty(db.sql, { timeoutMs: 20_000, what: 'the outbox to drain' });
  await capture.waitFor((events) => events.some((e) => e.event === '$identify'), { timeoutMs: 10_000 });
  await worker.stop();
  expect(capture.events.find((e) => e.event === '$identify')!.properties.$set).toMatchObject({ email: EMAIL });
  const output = worker.output();
  expect(output).toMatch(/"delivered":\d+/);
  expectNoSecrets(output, 'worker output');
  const dead = await db.sql<{ event: string; reason: string }[]>`SELECT event, reason FROM posthog_outbox.dead_letters`;
  expect(dead.map((d) => d.event)).toEqual(['poison']);
  expect(dead[0]!.reason).toMatch(/400/);
  expectNoSecrets(dead[0]!.reason, 'the dead-letter reason');
}, 60_000);

it('an unreachable database: the error names the server, not the password', async () => {
  const u = new URL(url);
  u.port = '1';
  const result = await runCli(['worker'], { env: { DATABASE_URL: u.toString(), POSTHOG_API_KEY: KEY, POSTHOG_HOST: capture.url } });
  expect(result.code).not.toBe(0);
  expect(result.stderr + result.stdout).toContain('127.0.0.1:1');
  expectNoSecrets(result.stderr + result.stdout, 'the error');
});

it('a bad configuration: the message does not echo the key', async () => {
  const result = await runCli(['worker', '--posthog-host', 'ftp://x'], { env: { DATABASE_URL: url, POSTHOG_API_KEY: KEY } });
  expect(result.code).toBe(2);
  expectNoSecrets(result.stderr + result.stdout, 'the error');
});
