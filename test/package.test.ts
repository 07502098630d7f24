/**
 * The package as an application gets it: `npm pack` (which builds dist/ on prepack), the tarball installed
 * into a throwaway application under the OS temp folder beside the application's own drizzle-orm, Kysely
 * and pg, Prisma 7 (with @prisma/adapter-pg, its client generated there), TypeORM, Sequelize and MikroORM 6
 * (from the npm cache where it has them), then from that application `posthog-outbox migrate`, scripts
 * recording through its own drizzle and Kysely and through each ORM's transaction (one transaction of each
 * rolled back), and `posthog-outbox worker` delivering the committed events to the capture server. Slow
 * (an install).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureServer } from '../dev/capture-server.ts';
import type { TestDatabase } from './support/db.ts';
import { PRISMA_SCHEMA, prismaGenerateEnv } from './support/prisma.ts';
import { databaseAndCapture, outboxEmpty } from './support/worker.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const KEY = 'phc_package_test';
const run = promisify(execFile);

let db: TestDatabase;
let capture: CaptureServer;
databaseAndCapture(KEY, (fixture) => ({ db, capture } = fixture));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'posthog-outbox-app-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** npm without the npm_* settings of the `npm test` that may be running us (they would steer the nested npm). */
function npm(args: string[], cwd: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  return run('npm', [...args, '--no-audit', '--no-fund'], { cwd, env, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 });
}

const installedVersion = (name: string) => JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version as string;

/** The application's handler: drizzle over node-postgres and Kysely over node-postgres, its own copies. */
const APP_SCRIPT = `
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { record } from 'posthog-outbox';

const url = process.env.DATABASE_URL;
const messages = pgTable('messages', { id: serial('id').primaryKey(), body: text('body').notNull() });
const event = (name) => ({ event: name, distinctId: 'user_1', properties: { $groups: { organization: 'org_1' } }, groups: { organization: 'org_1' }, profiles: {} });
const pool = new pg.Pool({ connectionString: url });
const orm = drizzle(pool);
const kysely = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) });
await pool.query('CREATE TABLE messages (id serial PRIMARY KEY, body text NOT NULL)');
const undo = new Error('undo');
const committed = [];
committed.push(...(await orm.transaction(async (tx) => { await tx.insert(messages).values({ body: 'a' }); return record(tx, event('drizzle_committed')); })));
await orm.transaction(async (tx) => { await record(tx, event('drizzle_rolled_back')); throw undo; }).catch((e) => { if (e !== undo) throw e; });
committed.push(...(await kysely.transaction().execute((trx) => record(trx, [event('kysely_committed'), event('kysely_committed')]))));
await kysely.transaction().execute(async (trx) => { await record(trx, event('kysely_rolled_back')); throw undo; }).catch((e) => { if (e !== undo) throw e; });
await pool.end();
await kysely.destroy();
console.log(JSON.stringify(committed));
`;

/** The ORMs the application installs beside the package (as the package's dev dependencies pin them). */
const ORMS = ['prisma', '@prisma/client', '@prisma/adapter-pg', 'typeorm', 'sequelize', '@mikro-orm/core', '@mikro-orm/postgresql'];

/**
 * The application's handlers on Prisma (its generated client, over pg), TypeORM, Sequelize and MikroORM: in
 * each ORM's transaction, its own row and one event committed, one event rolled back.
 */
const ORM_SCRIPT = `
import { PrismaPg } from '@prisma/adapter-pg';
import { DataSource } from 'typeorm';
import { DataTypes, Sequelize } from 'sequelize';
import { EntitySchema, MikroORM } from '@mikro-orm/postgresql';
import { record } from 'posthog-outbox';
import { PrismaClient } from './client/client.ts';

const url = process.env.DATABASE_URL;
const event = (name) => ({ event: name, distinctId: 'user_1', properties: { $groups: { organization: 'org_1' } }, groups: { organization: 'org_1' }, profiles: {} });
const undo = new Error('undo');
const undone = (e) => { if (e !== undo) throw e; };
const committed = [];

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
committed.push(...(await prisma.$transaction(async (tx) => { await tx.message.create({ data: { body: 'prisma' } }); return record(tx, event('prisma_committed')); })));
await prisma.$transaction(async (tx) => { await record(tx, event('prisma_rolled_back')); throw undo; }).catch(undone);
await prisma.$disconnect();

const dataSource = await new DataSource({ type: 'postgres', url }).initialize();
committed.push(...(await dataSource.transaction(async (manager) => { await manager.query('INSERT INTO messages (body) VALUES ($1)', ['typeorm']); return record(manager, event('typeorm_committed')); })));
await dataSource.transaction(async (manager) => { await record(manager, event('typeorm_rolled_back')); throw undo; }).catch(undone);
await dataSource.destroy();

const sequelize = new Sequelize(url, { logging: false });
const Message = sequelize.define('Message', { body: { type: DataTypes.TEXT, allowNull: false } }, { tableName: 'messages', timestamps: false });
committed.push(...(await sequelize.transaction(async (t) => { await Message.create({ body: 'sequelize' }, { transaction: t }); return record(t, event('sequelize_committed')); })));
await sequelize.transaction(async (t) => { await record(t, event('sequelize_rolled_back')); throw undo; }).catch(undone);
await sequelize.close();

class Row {}
const orm = await MikroORM.init({ clientUrl: url, entities: [new EntitySchema({ class: Row, tableName: 'messages', properties: { id: { type: 'number', primary: true }, body: { type: 'string' } } })] });
committed.push(...(await orm.em.transactional(async (em) => { em.persist(em.create(Row, { body: 'mikro-orm' })); await em.flush(); return record(em, event('mikro_orm_committed')); })));
await orm.em.transactional(async (em) => { await record(em, event('mikro_orm_rolled_back')); throw undo; }).catch(undone);
await orm.close();

console.log(JSON.stringify(committed));
`;

/** The application's console: `posthog-outbox/console` on a free port, its page, files and figures read once. */
const CONSOLE_SCRIPT = `
import { startConsole } from 'posthog-outbox/console';
const server = await startConsole({ databaseUrl: process.env.DATABASE_URL, port: 0, logger: { info() {}, warn() {}, error() {} } });
const page = await (await fetch(server.url)).text();
const files = await Promise.all(['console.js', 'dom.js', 'console.css'].map(async (f) => (await fetch(server.url + f)).status));
const overview = await (await fetch(server.url + 'api/overview')).json();
console.log(JSON.stringify({ page: page.includes('src="/console.js"'), files, backlog: overview.status.backlog }));
await server.close();
`;

describe('the packed package in an application', () => {
  it('installs without build scripts, migrates, records with the application’s drizzle, Kysely, Prisma, TypeORM, Sequelize and MikroORM, and its worker delivers', async () => {
    const packed = await npm(['pack', '--json', '--pack-destination', dir], ROOT);
    const [{ filename, files }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
    const paths = files.map((f) => f.path);
    expect(paths).toContain('dist/cli/main.js');
    expect(paths).toContain('migrations/meta/_journal.json');
    expect(paths).toContain('CHANGELOG.md'); // the README links it
    expect(paths).toContain('assets/console/console.js'); // the console's page, served by the package
    expect(paths.filter((p) => /^(test|bench|src)\/|\.test\.js$/.test(p))).toEqual([]);

    const app = path.join(dir, 'app');
    mkdirSync(app, { recursive: true });
    // Prisma's install scripts download its engines: denied, as the package's own allowScripts does (generate needs none).
    const allowScripts = { prisma: false, '@prisma/engines': false };
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', allowScripts }));
    const deps = ['drizzle-orm', 'kysely', 'pg', ...ORMS].map((name) => `${name}@${installedVersion(name)}`);
    await npm(['install', '--prefer-offline', path.join(dir, filename), ...deps], app);
    writeFileSync(path.join(app, 'schema.prisma'), PRISMA_SCHEMA);
    await run(process.execPath, [path.join(app, 'node_modules/prisma/build/index.js'), 'generate', '--schema', 'schema.prisma'], {
      cwd: app,
      env: prismaGenerateEnv(),
      timeout: 60_000,
    });

    const installed = path.join(app, 'node_modules/posthog-outbox');
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    expect(Object.keys(manifest.scripts ?? {}).filter((s) => /^(pre|post)?(install|prepare)$/.test(s))).toEqual([]);
    expect(manifest.dependencies['drizzle-orm']).toBeUndefined();
    // One drizzle-orm, the application's: the package has no copy of its own.
    expect(existsSync(path.join(installed, 'node_modules/drizzle-orm'))).toBe(false);

    const cli = path.join(installed, 'dist/cli/main.js');
    const env = { ...process.env, DATABASE_URL: db.url, POSTHOG_API_KEY: KEY, POSTHOG_HOST: capture.url };
    await db.sql.unsafe('DROP SCHEMA posthog_outbox CASCADE');
    const migrated = await run(process.execPath, [cli, 'migrate'], { cwd: app, env, timeout: 60_000 });
    expect(migrated.stdout).toMatch(/^applied \d+ migration\(s\) to schema "posthog_outbox"/);

    writeFileSync(path.join(app, 'handler.js'), APP_SCRIPT);
    const handler = await run(process.execPath, ['handler.js'], { cwd: app, env, timeout: 60_000 });
    writeFileSync(path.join(app, 'orms.js'), ORM_SCRIPT);
    const orms = await run(process.execPath, ['orms.js'], { cwd: app, env, timeout: 120_000 });
    const committed = [...(JSON.parse(handler.stdout) as string[]), ...(JSON.parse(orms.stdout.trim().split('\n').at(-1)!) as string[])];
    expect(committed).toHaveLength(7);

    const worker = spawn(process.execPath, [cli, 'worker'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    expect(delivered.map((e) => e.event).sort()).toEqual([
      'drizzle_committed',
      'kysely_committed',
      'kysely_committed',
      'mikro_orm_committed',
      'prisma_committed',
      'sequelize_committed',
      'typeorm_committed',
    ]);
    const [messages] = await db.sql<{ bodies: string[] }[]>`SELECT array_agg(body ORDER BY body) AS bodies FROM messages`;
    expect(messages!.bodies).toEqual(['a', 'mikro-orm', 'prisma', 'sequelize', 'typeorm']);

    // The console from the package: its page's files are shipped (assets/), its entry is exported.
    writeFileSync(path.join(app, 'console.js'), CONSOLE_SCRIPT);
    const served = JSON.parse((await run(process.execPath, ['console.js'], { cwd: app, env, timeout: 60_000 })).stdout);
    expect(served).toEqual({ page: true, files: [200, 200, 200], backlog: 0 });
  }, 600_000);
});
