/** Gives a test file a database of its own on the test server, migrated, and drops it afterwards. */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { migrateOutbox } from '../../src/outbox/apply.ts';

export interface TestDatabase {
  url: string;
  name: string;
  /** A postgres.js client on the database (closed by drop). */
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = inject('adminUrl');
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  if (options.migrate !== false) await migrateOutbox(sql);
  return {
    url,
    name,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

/**
 * Drops `db`, then `roles`: roles are cluster-wide, and one granted anything in the database (default
 * privileges included) can only be dropped once the database is gone.
 */
export async function dropWithRoles(db: TestDatabase, roles: readonly string[]): Promise<void> {
  await db.drop();
  const admin = postgres(withDatabase(db.url, 'postgres'), { max: 1, onnotice: () => {} });
  try {
    for (const role of roles) await admin.unsafe(`DROP ROLE IF EXISTS ${role}`);
  } finally {
    await admin.end();
  }
}
