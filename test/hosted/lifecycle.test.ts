/**
 * Deploy lifecycle: a SIGTERM that reaches `posthog-outbox worker` while it is still starting (loading, its
 * database not answering, pg-boss waiting on a lock) stops what has started and exits 0, as a rolling
 * deploy that cancels a new pod expects; nothing of the worker stays connected.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerProcess } from '../support/processes.ts';
import { createWorkerDatabase, until } from '../support/worker.ts';
import type { TestDatabase } from '../support/db.ts';

let db: TestDatabase;
/** Accepts TCP connections and never says a word: a database that hangs. */
let silent: Server;
let silentUrl: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  db = await createWorkerDatabase();
  silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentUrl = `postgres://app:secret@127.0.0.1:${(silent.address() as { port: number }).port}/app`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
  await db.drop();
});

/** Whether the CLI's first module ran in `pid`: it names the process (ps, /proc/<pid>/comm) as it starts holding signals. */
async function holdsSignals(pid: number): Promise<boolean> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).startsWith('posthog-outbox');
}

const workerConnections = async () =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db.name} AND application_name LIKE 'posthog-outbox%'`)[0]!.n;

async function stopWhile(url: string, ready: (output: string) => boolean | Promise<boolean>, what: string) {
  const w = startWorkerProcess({ databaseUrl: url, apiKey: 'phc_lifecycle', host: 'http://127.0.0.1:9' });
  try {
    await until(async () => ready(w.output()), Boolean, { timeoutMs: 20_000, what });
    const sentAt = Date.now();
    w.child.kill('SIGTERM');
    const code = await w.exited;
    return { code, signal: w.child.signalCode, ms: Date.now() - sentAt, output: w.output() };
  } finally {
    if (w.child.exitCode === null && w.child.signalCode === null) await w.kill();
  }
}

describe('SIGTERM while the worker is starting', () => {
  it('while the process is still loading: exit 0', async () => {
    const w = startWorkerProcess({ databaseUrl: silentUrl, apiKey: 'phc_lifecycle', host: 'http://127.0.0.1:9' });
    // As soon as the CLI's first module ran, while it still loads the rest (commander, pg-boss, postgres.js).
    await until(() => holdsSignals(w.pid), Boolean, { timeoutMs: 10_000, what: 'the process to hold signals' });
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(w.child.signalCode).toBeNull();
  });

  it('while its database does not answer: exit 0 at once, not after the connect timeout', async () => {
    const connectedBefore = sockets.length;
    const result = await stopWhile(silentUrl, () => sockets.length > connectedBefore, 'the worker to connect to the silent database');
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(result.ms).toBeLessThan(3_000); // the connect timeout is 10 s
    expect(result.output).toContain('stopped while starting');
    expect(result.output).not.toContain('secret');
  });

  it('while pg-boss waits on a lock during its start: exit 0, and none of its connections stays open', async () => {
    const locker = await db.sql.reserve();
    try {
      await locker`BEGIN`;
      await locker`LOCK TABLE pgboss.version IN ACCESS EXCLUSIVE MODE`;
      const blocked = async () =>
        (
          await db.sql<
            { n: number }[]
          >`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db.name} AND wait_event_type = 'Lock' AND application_name LIKE 'posthog-outbox worker%'`
        )[0]!.n > 0;
      const result = await stopWhile(db.url, blocked, 'pg-boss to wait on the lock');
      expect(result).toMatchObject({ code: 0, signal: null });
      expect(result.output).toContain('stopped while starting');
    } finally {
      await locker`ROLLBACK`;
      locker.release();
    }
    await until(workerConnections, (n) => n === 0, { timeoutMs: 5_000, what: "the worker's connections to close" });
  });
});
