/**
 * The worker grants of docs/hosted-postgres.md keep working after pg-boss creates new objects in its schema (an upgrade run
 * by `migrate`, or a partitioned queue, which gets a table of its own): the ```sql grants block, run
 * verbatim with unique role names, includes ALTER DEFAULT PRIVILEGES. Without those lines the same new
 * table is out of the worker role's reach (the control).
 */
import { randomBytes } from 'node:crypto';
import { PgBoss } from 'pg-boss';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dropWithRoles, type TestDatabase } from '../support/db.ts';
import { docBlock } from '../support/docs.ts';
import { createWorkerDatabase } from '../support/worker.ts';

const suffix = randomBytes(4).toString('hex');
const roles = {
  writer: `posthog_outbox_writer_${suffix}`,
  worker: `posthog_outbox_worker_${suffix}`,
  control: `posthog_outbox_control_${suffix}`,
  controlWriter: `posthog_outbox_cwriter_${suffix}`,
};

function grantsBlock(): string {
  return docBlock('docs/hosted-postgres.md', 'sql grants');
}

function as(db: TestDatabase, role: string): string {
  const url = new URL(db.url);
  url.username = role;
  url.password = 'change-me';
  return url.toString();
}

let db: TestDatabase;
let workerSql: postgres.Sql;
let controlSql: postgres.Sql;
beforeAll(async () => {
  db = await createWorkerDatabase();
  await db.sql.unsafe(grantsBlock().replaceAll('posthog_outbox_writer', roles.writer).replaceAll('posthog_outbox_worker', roles.worker));
  // The control: the same grants without the default privileges.
  const withoutDefaults = grantsBlock()
    .split('\n')
    .filter((line) => !line.startsWith('ALTER DEFAULT PRIVILEGES'))
    .join('\n');
  expect(withoutDefaults).not.toEqual(grantsBlock());
  await db.sql.unsafe(withoutDefaults.replaceAll('posthog_outbox_writer', roles.controlWriter).replaceAll('posthog_outbox_worker', roles.control));
  // What an upgrade does after the grants: pg-boss (as the owner) makes new tables in its schema.
  const owner = new PgBoss({ connectionString: db.url, schema: 'pgboss', migrate: false, schedule: false, supervise: false, max: 2 });
  owner.on('error', () => {});
  await owner.start();
  await owner.createQueue('created-after-grants', { partition: true });
  await owner.stop({ graceful: false, close: true, timeout: 2_000 });
  await db.sql`CREATE TABLE pgboss.added_by_upgrade (id serial PRIMARY KEY, note text)`;
  workerSql = postgres(as(db, roles.worker), { max: 1, onnotice: () => {} });
  controlSql = postgres(as(db, roles.control), { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await workerSql?.end();
  await controlSql?.end();
  if (db) await dropWithRoles(db, Object.values(roles));
});

it('the worker role reads and writes a table (and its sequence) created in pgboss after the grants', async () => {
  const [row] = await workerSql<{ id: number }[]>`INSERT INTO pgboss.added_by_upgrade (note) VALUES ('x') RETURNING id`;
  expect(row!.id).toBe(1);
  await workerSql`UPDATE pgboss.added_by_upgrade SET note = 'y'`;
  expect(await workerSql`SELECT note FROM pgboss.added_by_upgrade`).toEqual([{ note: 'y' }]);
  await workerSql`DELETE FROM pgboss.added_by_upgrade`;
  await expect(controlSql`SELECT * FROM pgboss.added_by_upgrade`).rejects.toThrow(/permission denied/);
});

it('pg-boss as the worker role sends and fetches jobs of a partitioned queue created after the grants', async () => {
  const boss = new PgBoss({
    connectionString: as(db, roles.worker),
    schema: 'pgboss',
    migrate: false,
    createSchema: false,
    schedule: false,
    supervise: false,
    max: 2,
  });
  boss.on('error', () => {});
  await boss.start();
  try {
    const id = await boss.send('created-after-grants', { n: 1 });
    const jobs = await boss.fetch('created-after-grants');
    expect(jobs.map((j) => j.id)).toEqual([id]);
    await boss.complete('created-after-grants', id!);
  } finally {
    await boss.stop({ graceful: false, close: true, timeout: 2_000 });
  }
  const [table] = await db.sql<{ table_name: string }[]>`SELECT table_name FROM pgboss.queue WHERE name = 'created-after-grants'`;
  await expect(controlSql.unsafe(`SELECT * FROM pgboss.${table!.table_name}`)).rejects.toThrow(/permission denied/);
});
