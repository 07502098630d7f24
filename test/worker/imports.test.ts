/**
 * The worker process stays lean: importing drizzle-orm's query builder costs ~190 MB of RSS on Node 24, so
 * nothing on the worker's path (the CLI entry, the worker, record() for re-identify) may import it. The
 * library recognises drizzle connections without importing drizzle (src/record/executor.ts).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modulesLoadedBy } from '../support/imports.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('the worker process import graph', () => {
  it('loads no drizzle-orm module for the worker command, the worker, the CLI commands or record()', () => {
    // (not the demo: it stands on the public API, whose entry offers the drizzle schema)
    const urls = modulesLoadedBy(['cli/worker.ts', 'worker/index.ts', 'src/record/record.ts', 'cli/status.ts', 'cli/backfill.ts']);
    expect(urls.some((u) => u.includes('/worker/index.ts'))).toBe(true); // the hook saw the graph
    expect(urls.filter((u) => u.includes('/drizzle-orm/') && !u.endsWith('/drizzle-orm/migrator.js'))).toEqual([]);
  });

  it('`posthog-outbox worker` loads the worker command only: no drizzle-orm module at all, nor the other commands', () => {
    // main.ts as the bin runs it; without DATABASE_URL the worker command refuses to start (exit 2) once loaded.
    const script = `
      import { registerHooks } from 'node:module';
      const urls = new Set();
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.add(r.url); return r; } });
      process.argv = [process.argv[0], 'main.ts', 'worker'];
      process.on('exit', () => process.stdout.write(JSON.stringify([...urls])));
      await import(${JSON.stringify(path.join(ROOT, 'cli/main.ts'))});`;
    const env: NodeJS.ProcessEnv = { ...process.env, POSTHOG_OUTBOX_HEAP: 'node' }; // no re-exec (cli/heap.ts): `-e` has no script to run again
    delete env.DATABASE_URL;
    delete env.POSTHOG_API_KEY;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(child.stderr).toContain('--database-url (DATABASE_URL): is not set');
    expect(child.status).toBe(2);
    const urls: string[] = JSON.parse(child.stdout);
    expect(urls.some((u) => u.endsWith('/cli/worker.ts'))).toBe(true);
    expect(urls.filter((u) => u.includes('/drizzle-orm/'))).toEqual([]);
    expect(urls.filter((u) => /\/cli\/(migrate|status|dead-letters|backfill|demo)\.ts$/.test(u))).toEqual([]);
  });

  it('the library entry still offers the drizzle schema (it is where drizzle is loaded)', () => {
    const urls = modulesLoadedBy(['src/index.ts']);
    expect(urls.some((u) => u.includes('/drizzle-orm/pg-core/'))).toBe(true);
  });
});
