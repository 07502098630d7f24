/**
 * Sequelize (6, the `postgres` dialect): a `Transaction`, managed (`sequelize.transaction(async (t) => ...)`)
 * or unmanaged (`await sequelize.transaction()`, then `t.commit()` or `t.rollback()`). The transaction
 * carries its `sequelize`, which runs the statement with `{ transaction: t }`.
 *
 * A `Sequelize` instance is refused, not written through: without `{ transaction }` its query runs on
 * another connection of the pool, outside the handler's transaction (the usual slip inside a managed
 * transaction); so is a transaction that has already committed or rolled back. The statement's `$1`, `$2`,
 * ... are Sequelize's positional bind parameters, sent to PostgreSQL as parameters (not inlined).
 */
import { OutboxError } from '../../errors/errors.ts';
import { hasMethod, type ClientAdapter, type Execute, type Row } from './adapter.ts';

/**
 * The part of a Sequelize `Transaction` that `record()` relies on (Sequelize is not imported). Sequelize's own
 * declaration leaves out its `sequelize`, which the executor reads.
 */
export interface SequelizeTransaction {
  readonly LOCK: unknown;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  afterCommit(...args: never[]): unknown;
}

interface Sequelize {
  getDialect(): string;
  query(sql: string, options: { bind: unknown[]; transaction: unknown; type: 'RAW' }): Promise<[Row[] | unknown, unknown]>;
}

const isSequelize = (value: unknown) =>
  hasMethod(value, 'getDialect') && hasMethod(value, 'query') && hasMethod(value, 'transaction') && hasMethod(value, 'define');

const isTransaction = (value: unknown) =>
  hasMethod(value, 'commit') && hasMethod(value, 'rollback') && hasMethod(value, 'afterCommit') && isSequelize((value as { sequelize?: unknown }).sequelize);

function sequelizeExecutor(connection: unknown, field: string): Execute {
  if (!isTransaction(connection)) {
    throw new OutboxError(
      'invalid_transaction',
      field,
      'is a Sequelize instance, outside any transaction; pass the Transaction: the `t` of sequelize.transaction(async (t) => ...), or `await sequelize.transaction()`',
    );
  }
  const transaction = connection as { sequelize: Sequelize; finished?: unknown };
  if (transaction.finished !== undefined) {
    const ended = transaction.finished === 'commit' ? 'committed' : transaction.finished === 'rollback' ? 'rolled back' : String(transaction.finished);
    throw new OutboxError('invalid_transaction', field, `is a Sequelize Transaction that has already ${ended}; pass an open one`);
  }
  const dialect = transaction.sequelize.getDialect();
  if (dialect !== 'postgres')
    throw new OutboxError('invalid_transaction', field, `is a Sequelize Transaction for ${JSON.stringify(dialect)}; the outbox needs the "postgres" dialect`);
  return async (text, params) => {
    // RAW: [rows, result] whatever the statement (a row count in place of the result for INSERT, UPDATE, DELETE).
    const [rows] = await transaction.sequelize.query(text, { bind: params, transaction, type: 'RAW' });
    return Array.isArray(rows) ? rows : [];
  };
}

export const sequelize: ClientAdapter = {
  name: 'Sequelize',
  matches: (connection) => isSequelize(connection) || isTransaction(connection),
  executor: sequelizeExecutor,
};
