/**
 * `ignorePostgresStrayError` (exported by `posthog-outbox/worker` for a process that embeds `startWorker`,
 * and used by `posthog-outbox worker`): it recognises postgres.js's two known stray errors, with a warning,
 * and nothing else, logging nothing then.
 */
import { describe, expect, it } from 'vitest';
import { ignorePostgresStrayError, type Logger } from '../../worker/index.ts';

function recordingLogger(): Logger & { lines: { level: string; object: object; message?: string }[] } {
  const lines: { level: string; object: object; message?: string }[] = [];
  const at = (level: string) => (object: object, message?: string) => lines.push({ level, object, message });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

function closedSocketWrite(stack: string): TypeError {
  const e = new TypeError("Cannot read properties of null (reading 'write')");
  e.stack = `TypeError: ${e.message}\n${stack}`;
  return e;
}
const POSTGRES_STACK =
  '    at Immediate.nextWrite (/app/node_modules/postgres/src/connection.js:255:22)\n    at process.processImmediate (node:internal/timers:574:21)';
/** The array-type query postgres.js 3.4.9 runs on each new connection without awaiting it. */
const TYPE_QUERY = 'select b.oid, b.typarray from pg_catalog.pg_type a left join pg_catalog.pg_type b on b.oid = a.typelem';

describe('ignorePostgresStrayError', () => {
  it.each([
    ['the write on a closed socket (porsager/postgres#1208)', closedSocketWrite(POSTGRES_STACK), /closed database connection/],
    [
      'its array-type query, lost with the connection (#1192)',
      Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' }),
      /outside a query of ours/,
    ],
    [
      'its array-type query, refused (#1192)',
      Object.assign(new Error('role "r" is not permitted to log in'), { code: '28000', query: TYPE_QUERY }),
      /outside a query of ours/,
    ],
  ])('ignores %s, with a warning', (_label, error, warning) => {
    const log = recordingLogger();
    expect(ignorePostgresStrayError(error, log)).toBe(true);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]!.level).toBe('warn');
    expect(log.lines[0]!.message).toMatch(warning);
  });

  it.each([
    ['the same TypeError from other code', closedSocketWrite('    at send (/app/worker/sender.ts:10:3)')],
    ['a query error of ours', Object.assign(new Error('relation "x" does not exist'), { code: '42P01', query: 'SELECT 1' })],
    ['the same refusal on a query of ours', Object.assign(new Error('role "r" is not permitted to log in'), { code: '28000', query: 'SELECT 1' })],
    ['a plain error', new Error('boom')],
    ['a RangeError', new RangeError('Maximum call stack size exceeded')],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
    ['null', null],
  ])('leaves %s to the caller, logging nothing', (_label, error) => {
    const log = recordingLogger();
    expect(ignorePostgresStrayError(error, log)).toBe(false);
    expect(log.lines).toEqual([]);
  });
});
