/** The write path: the one statement `record()` runs in the caller's transaction (and the worker, for its identify rows). */
import { IDENTITY_COLUMNS, quoteSchema, RECORD_COLUMNS } from '../outbox/columns.ts';

/**
 * Up to this many events, `insertEvents` takes one text parameter per column (`VALUES`); PostgreSQL then
 * parses each jsonb value once. Above it (the worker's identify rows after a large batch), one parameter
 * holding every row as JSON, which stays under PostgreSQL's 65,535 parameters whatever the count, at the
 * price of parsing the JSON again per column.
 */
export const VALUES_ROWS_LIMIT = 64;

/**
 * Inserts `rows` events in one statement (one round trip). With `VALUES` (`rows` <= VALUES_ROWS_LIMIT) the
 * parameters are the rows' column values in `RECORD_COLUMNS` order (then `IDENTITY_COLUMNS` for the worker's
 * identify rows, `withIdentity`), each as text or null (jsonb as its JSON text); otherwise `$1` is a JSON
 * array of objects keyed by those columns.
 */
export function insertEvents(schema: string, rows: number, withIdentity = false): string {
  // Built once per shape: the handler's path runs it for every record() call, and the same string each time
  // is also what the client's prepared-statement cache looks up.
  const key = `${schema}\n${rows > VALUES_ROWS_LIMIT ? 0 : rows}\n${withIdentity}`;
  let text = statements.get(key);
  if (text === undefined) {
    text = buildInsert(schema, rows, withIdentity);
    if (statements.size < 1000) statements.set(key, text);
  }
  return text;
}

const statements = new Map<string, string>();

function buildInsert(schema: string, rows: number, withIdentity: boolean): string {
  const all = withIdentity ? [...RECORD_COLUMNS, ...IDENTITY_COLUMNS] : RECORD_COLUMNS;
  const columns = all.map(([name]) => `"${name}"`).join(', ');
  const into = `INSERT INTO ${quoteSchema(schema)}."outbox" (${columns})`;
  if (rows > VALUES_ROWS_LIMIT) {
    const types = all.map(([name, type]) => `"${name}" ${type}`).join(', ');
    return `${into} SELECT ${columns} FROM json_to_recordset($1::text::json) AS r(${types})`;
  }
  const tuple = (row: number) => `(${all.map(([, type], i) => `$${row * all.length + i + 1}::text${type === 'text' ? '' : `::${type}`}`).join(', ')})`;
  return `${into} VALUES ${Array.from({ length: rows }, (_, row) => tuple(row)).join(', ')}`;
}
