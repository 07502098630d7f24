/**
 * The ORM examples as tests (as test/docs.test.ts runs the README's handler): each handler of
 * docs/clients.md (```ts prisma, typeorm, sequelize, mikro-orm) runs as written against a real database,
 * with only `posthog-outbox` and Prisma's generated client pointed at this checkout; each short example of
 * the README runs after a prelude that declares what it takes for granted (the ORM's client, `Message`,
 * `body`, `event`). Every event lands in the outbox with the row written beside it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CREATE_MESSAGES } from './clients/support.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { docBlock, ROOT } from './support/docs.ts';
import { generatePrisma, type GeneratedPrisma } from './support/prisma.ts';

const root = fileURLToPath(ROOT);

let db: TestDatabase;
let prisma: GeneratedPrisma;
const env = { ...process.env };

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  prisma = await generatePrisma();
  process.env.DATABASE_URL = db.url;
}, 120_000);

afterAll(async () => {
  process.env = env;
  await prisma?.remove();
  await db?.drop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
});

/** Writes `code` as a module under .data/ (its imports resolve from the project, `posthog-outbox` to src/) and imports it. */
async function runModule(name: string, code: string): Promise<void> {
  const dir = path.join(root, '.data', 'docs-examples');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${process.pid}-${Date.now()}.ts`);
  const entry = pathToFileURL(path.join(root, 'src', 'index.ts')).href;
  const client = pathToFileURL(path.join(prisma.dir, 'client', 'client.ts')).href;
  writeFileSync(file, code.replaceAll("from 'posthog-outbox'", `from '${entry}'`).replaceAll("from './generated/prisma/client.ts'", `from '${client}'`));
  try {
    await import(pathToFileURL(file).href);
  } finally {
    rmSync(file, { force: true });
  }
}

const CONTEXT = "{ organization: { id: 'org_docs' }, user: { id: 'user_docs' } }";

/** The outbox's events and the messages, each event's message_id one of the messages' ids. */
async function recorded(): Promise<{ events: string[]; messages: string[] }> {
  const events = await db.sql<{ event: string; message_id: number | null }[]>`
    SELECT event, (properties->>'message_id')::int AS message_id FROM posthog_outbox.outbox ORDER BY uuid`;
  const messages = await db.sql<{ id: number; body: string }[]>`SELECT id, body FROM messages ORDER BY id`;
  const ids = new Set(messages.map((m) => m.id));
  for (const e of events) if (e.message_id !== null) expect(ids.has(e.message_id), `${e.event}'s message ${e.message_id}`).toBe(true);
  return { events: events.map((e) => e.event), messages: messages.map((m) => m.body) };
}

describe('the handlers of docs/clients.md, run as written', () => {
  it.each([
    ['prisma', ['saveMessage'], 'await prisma.$disconnect();'],
    ['typeorm', ['saveMessage', 'saveMessageOnRunner'], 'await dataSource.destroy();'],
    ['sequelize', ['saveMessage', 'saveMessageUnmanaged'], 'await sequelize.close();'],
    ['mikro-orm', ['saveMessage'], 'await orm.close();'],
  ])('%s: each handler saves its message and records its event', async (orm, handlers, close) => {
    const calls = handlers.map((handler) => `await ${handler}(${CONTEXT}, '${orm} ${handler}');`).join('\n');
    await runModule(`clients-${orm}`, `${docBlock('docs/clients.md', `ts ${orm}`)}\n${calls}\n${close}\n`);
    expect(await recorded()).toEqual({ events: handlers.map(() => 'message_saved'), messages: handlers.map((h) => `${orm} ${h}`) });
  });
});

/** What the README's short examples take for granted, per ORM: imports, the client, `Message`, `body`, `event`. */
const README_PRELUDES: Record<string, string> = {
  prisma: `
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.ts';
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL! }) });`,
  typeorm: `
import { DataSource, EntitySchema } from 'typeorm';
const Message = new EntitySchema<{ id: number; body: string }>({ name: 'Message', tableName: 'messages', columns: { id: { type: Number, primary: true, generated: true }, body: { type: String } } });
const dataSource = await new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, entities: [Message] }).initialize();`,
  sequelize: `
import { DataTypes, Sequelize } from 'sequelize';
const sequelize = new Sequelize(process.env.DATABASE_URL!, { logging: false });
const Message = sequelize.define('Message', { body: DataTypes.TEXT }, { tableName: 'messages', timestamps: false });`,
  'mikro-orm': `
import { EntitySchema, MikroORM } from '@mikro-orm/postgresql';
class Message { id!: number; body!: string; }
const orm = await MikroORM.init({ clientUrl: process.env.DATABASE_URL, entities: [new EntitySchema<Message>({ class: Message, tableName: 'messages', properties: { id: { type: 'number', primary: true }, body: { type: 'string' } } })] });`,
};

const CLOSE: Record<string, string> = {
  prisma: 'await prisma.$disconnect();',
  typeorm: 'await dataSource.destroy();',
  sequelize: 'await sequelize.close();',
  'mikro-orm': 'await orm.close();',
};

describe('the README’s ORM examples, run after their prelude', () => {
  it.each(Object.keys(README_PRELUDES))('%s: the message and the event commit together', async (orm) => {
    const prelude = `import { record } from 'posthog-outbox';${README_PRELUDES[orm]}
const body = 'readme ${orm}';
const event = { event: 'readme_${orm.replace('-', '_')}', distinctId: 'user_docs', properties: {}, groups: {}, profiles: {} };`;
    await runModule(`readme-${orm}`, `${prelude}\n${docBlock('README.md', `ts ${orm}`)}\n${CLOSE[orm]}\n`);
    expect(await recorded()).toEqual({ events: [`readme_${orm.replace('-', '_')}`], messages: [`readme ${orm}`] });
  });
});
