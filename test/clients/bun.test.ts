/**
 * Bun as the runtime (npm's `bun` package provides the binary): handlers on drizzle over node-postgres,
 * drizzle over postgres.js and Kysely over node-postgres record events under Bun, and `posthog-outbox worker`
 * run by Bun delivers the committed ones to the capture server through real posthog-node; the rolled-back
 * ones never arrive.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { CLI } from '../support/cli.ts';
import type { TestDatabase } from '../support/db.ts';
import { databaseAndCapture, outboxCount, outboxEmpty } from '../support/worker.ts';
import { CREATE_MESSAGES } from './support.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BUN = path.join(ROOT, 'node_modules/.bin/bun');
const KEY = 'phc_bun_test';

let db: TestDatabase;
let capture: CaptureServer;
databaseAndCapture(KEY, (fixture) => ({ db, capture } = fixture));

describe('under Bun', () => {
  it('records through drizzle and Kysely, and the CLI worker run by Bun delivers exactly the committed events', async () => {
    await db.sql.unsafe(CREATE_MESSAGES);
    const env = { ...process.env, DATABASE_URL: db.url };
    const handlers = await promisify(execFile)(BUN, [path.join(import.meta.dirname, 'fixtures/bun-handlers.ts')], { cwd: ROOT, env, timeout: 60_000 });
    const { runtime, committed } = JSON.parse(handlers.stdout) as { runtime: string; committed: string[] };
    expect(runtime).toMatch(/^bun 1\.\d+\.\d+/);
    expect(committed).toHaveLength(4); // drizzle over pg 1, drizzle over postgres.js 1, Kysely 2
    expect(await outboxCount(db.sql)).toBe(4);
    const [messages] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM messages`;
    expect(messages!.n).toBe(3); // one message per committed transaction, none from the rolled-back ones

    const worker = spawn(BUN, [CLI, 'worker'], {
      cwd: ROOT,
      env: { ...env, POSTHOG_API_KEY: KEY, POSTHOG_HOST: capture.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    worker.stdout.on('data', (d) => (output += d));
    worker.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => worker.on('exit', (code) => resolve(code)));
    try {
      await capture.waitFor((events) => events.filter((e) => !e.event.startsWith('$')).length >= committed.length, { timeoutMs: 30_000 });
      await outboxEmpty(db.sql, { what: 'the outbox to drain' });
    } catch (error) {
      throw new Error(`${(error as Error).message}\nworker output:\n${output}`);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited, output).toBe(0);
    const delivered = capture.events.filter((e) => !e.event.startsWith('$'));
    expect(delivered.map((e) => e.uuid).sort()).toEqual([...committed].sort());
    expect(delivered.map((e) => e.event).sort()).toEqual(['drizzle_pg_committed', 'drizzle_postgresjs_committed', 'kysely_committed', 'kysely_committed']);
  });
});
