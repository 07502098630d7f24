/**
 * Prisma (7, the `prisma-client` generator with a driver adapter such as `@prisma/adapter-pg`; the classic
 * client alike): the `tx` of `prisma.$transaction(async (tx) => ...)`, an interactive transaction.
 *
 * A `PrismaClient` is refused, not written through: inside `$transaction` it is the usual slip (the
 * statement would run on another connection, outside the handler's transaction, and commit whatever the
 * handler does), and a one-off write is one line in Prisma (`prisma.$transaction((tx) => record(tx, e))`).
 * The statement goes through `$queryRawUnsafe`, which takes PostgreSQL's own `$1`, `$2`, ... placeholders.
 */
import { OutboxError } from '../../errors/errors.ts';
import { hasMethod, type ClientAdapter, type Execute, type Row } from './adapter.ts';

/**
 * The part of a Prisma interactive transaction client that `record()` relies on (Prisma is not imported).
 * A `PrismaClient` has `$connect`, which the transaction client lacks, so passing one does not type-check.
 */
export interface PrismaTransaction {
  $queryRawUnsafe(query: string, ...values: never[]): PromiseLike<unknown>;
  $executeRawUnsafe(query: string, ...values: never[]): PromiseLike<unknown>;
  $connect?: never;
}

/** What Prisma sets on the client it hands to an interactive transaction's callback (Prisma 6.x and 7). */
const TRANSACTION_SCOPE = Symbol.for('prisma.client.transaction.scope_context');

function isTransaction(client: object): boolean {
  // Before the marker existed, a transaction client was already the one without $connect.
  return (client as Record<symbol, unknown>)[TRANSACTION_SCOPE] !== undefined || !hasMethod(client, '$connect');
}

function prismaExecutor(connection: unknown, field: string): Execute {
  const client = connection as { $queryRawUnsafe(query: string, ...values: unknown[]): Promise<Row[]>; _activeProvider?: unknown };
  if (!isTransaction(client)) {
    throw new OutboxError(
      'invalid_transaction',
      field,
      'is a PrismaClient, outside any transaction; pass the `tx` of prisma.$transaction(async (tx) => ...), in which your handler writes',
    );
  }
  const provider = client._activeProvider;
  if (typeof provider === 'string' && provider !== 'postgresql' && provider !== 'postgres') {
    throw new OutboxError('invalid_transaction', field, `is a Prisma client for ${JSON.stringify(provider)}; the outbox needs PostgreSQL`);
  }
  return async (text, params) => {
    const rows = await client.$queryRawUnsafe(text, ...params);
    return Array.isArray(rows) ? rows : [];
  };
}

export const prisma: ClientAdapter = {
  name: 'Prisma',
  matches: (connection) => hasMethod(connection, '$queryRawUnsafe') && hasMethod(connection, '$executeRawUnsafe'),
  executor: prismaExecutor,
};
