/**
 * Statements with named parameters. A statement's text names its parameters (`:uuids`, `:leaseMs`), and its
 * type says what each one is, so a call site passes an object (`{ uuids, leaseMs }`) checked by the compiler
 * instead of an array whose order must match `$1`, `$2`... by hand. The text is turned into PostgreSQL's
 * `$n` placeholders here, once per statement built; a name used twice is one parameter.
 *
 * A `:name` inside a string literal ('...'), a quoted identifier ("...") or a `--` comment is text, and `::`
 * is a cast. The handler's INSERT (record.ts) is the one statement left positional: its placeholders are
 * generated from the columns declared once (columns.ts), for any number of rows and for every client.
 */
import type postgres from 'postgres';

export type Values = Record<string, unknown>;

/** A statement: its text with `$n` placeholders and, in `$n` order, the names of its parameters; `R` is a row it returns. */
export interface Statement<P extends Values = Record<never, never>, R extends object = postgres.Row> {
  readonly text: string;
  readonly names: readonly string[];
  /** Type only: the parameters (invariant, so a statement needing parameters cannot be run without them) and rows. */
  readonly types?: (values: P) => [P, R];
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

/** Compiles `named` (`:name` placeholders) into a statement. Throws on a positional `$n` left in it. */
export function statement<P extends Values = Record<never, never>, R extends object = postgres.Row>(named: string): Statement<P, R> {
  const names: string[] = [];
  let text = '';
  let i = 0;
  while (i < named.length) {
    const c = named[i]!;
    const quote = c === "'" || c === '"' ? c : null;
    if (quote || named.startsWith('--', i)) {
      const end = quote ? closing(named, i, quote) : lineEnd(named, i);
      text += named.slice(i, end);
      i = end;
      continue;
    }
    if (c === ':' && named[i + 1] === ':') {
      text += '::';
      i += 2;
      continue;
    }
    if (c === ':') {
      NAME.lastIndex = i + 1;
      const name = NAME.exec(named)?.[0];
      if (name) {
        let n = names.indexOf(name);
        if (n === -1) n = names.push(name) - 1;
        text += `$${n + 1}`;
        i += 1 + name.length;
        continue;
      }
    }
    if (c === '$' && /[0-9]/.test(named[i + 1] ?? '')) throw new Error(`a positional parameter in a named statement: ${named.slice(i, i + 40)}`);
    text += c;
    i++;
  }
  return { text, names };
}

/** Where the literal or quoted identifier opened at `start` ends (a doubled quote is part of it). */
function closing(text: string, start: number, quote: string): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] !== quote) continue;
    if (text[i + 1] === quote) i++;
    else return i + 1;
  }
  return text.length;
}

function lineEnd(text: string, start: number): number {
  const end = text.indexOf('\n', start);
  return end === -1 ? text.length : end;
}

/** The statement's parameter values, in `$n` order. Throws naming a parameter `values` lacks. */
export function bind<P extends Values>(statement: Statement<P, object>, values: P): unknown[] {
  return statement.names.map((name) => {
    if (!Object.hasOwn(values, name)) throw new Error(`no value for the statement's parameter :${name}`);
    return values[name];
  });
}

type Client = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

/** Runs a statement without parameters on a postgres.js connection or transaction. */
export function query<R extends object>(client: Client, statement: Statement<Record<never, never>, R>): postgres.PendingQuery<R[]>;
/** Runs `statement` with `values` on a postgres.js connection or transaction (`prepare: true` for the hot path's statements). */
export function query<P extends Values, R extends object>(
  client: Client,
  statement: Statement<P, R>,
  values: P,
  options?: postgres.UnsafeQueryOptions,
): postgres.PendingQuery<R[]>;
export function query(client: Client, statement: Statement<Values, object>, values: Values = {}, options?: postgres.UnsafeQueryOptions) {
  return client.unsafe(statement.text, bind(statement, values) as postgres.ParameterOrJSON<never>[], options);
}
