/**
 * Starts one throwaway PostgreSQL for the test run (unless DATABASE_URL points at a server to use instead)
 * and stops it at the end, also when tests fail. If this process is killed, the next run reaps the server
 * by its PID (dev/embedded-postgres.ts).
 */
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../dev/embedded-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A superuser URL on the test server; test files create their own databases there. */
    adminUrl: string;
  }
}

let server: EmbeddedServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (process.env.DATABASE_URL) {
    project.provide('adminUrl', process.env.DATABASE_URL);
    return;
  }
  // pg_stat_statements: what a test counts of the statements a worker runs (test/worker/poll.test.ts) is
  // current at once, where pg_stat_database lags by as long as a backend holds its statistics back.
  server = await startEmbeddedPostgres({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
  project.provide('adminUrl', server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
