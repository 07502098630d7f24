/**
 * Runs a statement on the caller's connection, whichever Postgres client it comes from. This is the one
 * place that tells the clients apart; each client's adapter is in `clients/`. Every client is recognised by
 * its shape, without importing its library, so a process loads only the libraries it uses (the worker never
 * loads drizzle-orm, a Kysely application never loads pg's or Knex's types at run time, ...).
 */
import { OutboxError } from '../errors/errors.ts';
import type { ClientAdapter, Execute } from './clients/adapter.ts';
import { drizzle, type DrizzleConnection } from './clients/drizzle.ts';
import { knex, type KnexConnection } from './clients/knex.ts';
import { kysely, type KyselyConnection } from './clients/kysely.ts';
import { nodePostgres, type NodePostgresConnection } from './clients/node-postgres.ts';
import { pglite, type PGliteConnection } from './clients/pglite.ts';
import { postgresJs, type PostgresJsConnection } from './clients/postgres-js.ts';
import { mikroOrm, type MikroOrmEntityManager } from './clients/mikro-orm.ts';
import { prisma, type PrismaTransaction } from './clients/prisma.ts';
import { sequelize, type SequelizeTransaction } from './clients/sequelize.ts';
import { typeOrm, type TypeOrmConnection } from './clients/typeorm.ts';

export type { Execute, Row } from './clients/adapter.ts';
export type { DrizzleConnection, KnexConnection, KyselyConnection, NodePostgresConnection, PGliteConnection, PostgresJsConnection };
export type { MikroOrmEntityManager, PrismaTransaction, SequelizeTransaction, TypeOrmConnection };

/**
 * Where to write: pass your transaction so the event commits or rolls back with your own rows. A database,
 * pool or client outside a transaction is a one-off write (see the README's connection table).
 */
export type Connection =
  | DrizzleConnection
  | PostgresJsConnection
  | KyselyConnection
  | NodePostgresConnection
  | KnexConnection
  | PGliteConnection
  | PrismaTransaction
  | TypeOrmConnection
  | SequelizeTransaction
  | MikroOrmEntityManager;

/**
 * Tried in this order; no connection has the shape of two of them (test/clients/detect.test.ts). The ORMs
 * (Prisma on) take a transaction only: their database objects are recognised to be refused by name.
 */
export const CLIENTS: readonly ClientAdapter[] = [drizzle, postgresJs, kysely, knex, pglite, nodePostgres, prisma, typeOrm, sequelize, mikroOrm];

/** The adapter for `connection`'s client, or undefined when it is none of them. */
export function clientOf(connection: unknown): ClientAdapter | undefined {
  return CLIENTS.find((client) => client.matches(connection));
}

/** Returns how to run statements on `connection`, or throws OutboxError when it is no client we know. */
export function executorFor(connection: unknown, field = 'tx'): Execute {
  const client = clientOf(connection);
  if (client) return client.executor(connection, field);
  throw new OutboxError(
    'invalid_transaction',
    field,
    `must be a transaction (or database) of ${CLIENTS.map((c) => c.name).join(', ')}; pass the transaction your handler writes in`,
  );
}
