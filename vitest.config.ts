import { globSync, readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import { isPostgresClosedSocketWrite, isPostgresStrayRejection } from './src/connection/postgres-workaround.ts';

const TESTS = 'test/**/*.test.ts';
/** `npm run soak` (SOAK=1): the files with long scenarios, those that import test/support/soak.ts. */
const soakFiles = () => globSync(TESTS).filter((file) => /from '[./]+\/support\/soak\.ts'/.test(readFileSync(file, 'utf8')));

export default defineConfig({
  test: {
    include: process.env.SOAK === '1' ? soakFiles() : [TESTS],
    // One throwaway PostgreSQL for the whole run (or DATABASE_URL's server); each test file gets its own database.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more workers only add contention on the database.
    maxWorkers: 2,
    // Known postgres.js bugs when PostgreSQL restarts under a client (src/connection/postgres-workaround.ts); every
    // other unhandled error still fails the run.
    onUnhandledError: (error) => (isPostgresClosedSocketWrite(error) || isPostgresStrayRejection(error) ? false : undefined),
  },
});
