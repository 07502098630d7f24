/**
 * What every client adapter provides: recognise a connection by its shape (without importing the client's
 * library, so a caller only ever loads the libraries it uses) and run a `$1`-style statement on it.
 */

export type Row = Record<string, unknown>;

/** Runs one statement, `text` with `$1`, `$2`, ... placeholders and their `params`, and returns its rows. */
export type Execute = (text: string, params: unknown[]) => Promise<Row[]>;

export interface ClientAdapter {
  /** The client's name, as the README's connection table and error messages say it. */
  name: string;
  /** Whether `connection` has this client's shape. */
  matches(connection: unknown): boolean;
  /**
   * How to run statements on `connection` (which `matches`). Throws `OutboxError` when the connection is this
   * client's but cannot take the outbox's SQL (another database than PostgreSQL). Runs no SQL itself.
   */
  executor(connection: unknown, field: string): Execute;
}

/** `value[key]` is a function (own or inherited: class methods count). */
export function hasMethod(value: unknown, key: string): boolean {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as Record<string, unknown>)[key] === 'function';
}

/** The class names of `value`'s class and its ancestors, most derived first. */
export function classNames(value: unknown): string[] {
  const names: string[] = [];
  if (!value || typeof value !== 'object') return names;
  for (let cls = Object.getPrototypeOf(value)?.constructor; typeof cls === 'function' && cls !== Object; cls = Object.getPrototypeOf(cls)) {
    if (cls.name) names.push(cls.name);
  }
  return names;
}

/** An executor for clients whose `query(text, params)` resolves to `{ rows }` (node-postgres, PGlite). */
export function queryRowsExecutor(connection: unknown): Execute {
  const client = connection as { query(text: string, params: unknown[]): Promise<{ rows: Row[] }> };
  return async (text, params) => (await client.query(text, params)).rows;
}
