import { describe, expect, it } from 'vitest';
import {
  isPostgresClosedSocketWrite,
  isPostgresConnectionLoss,
  isPostgresStrayRejection,
  isPostgresTypeFetchFailure,
} from '../src/connection/postgres-workaround.ts';

function typeError(message: string, stack: string): TypeError {
  const e = new TypeError(message);
  e.stack = `TypeError: ${message}\n${stack}`;
  return e;
}

const BUG_STACK =
  '    at Immediate.nextWrite (/app/node_modules/postgres/src/connection.js:255:22)\n    at process.processImmediate (node:internal/timers:574:21)';

describe('isPostgresClosedSocketWrite', () => {
  it.each([
    ['the postgres.js closed-socket write', typeError("Cannot read properties of null (reading 'write')", BUG_STACK), true],
    [
      'the same from the CommonJS build',
      typeError("Cannot read properties of null (reading 'write')", BUG_STACK.replace('postgres/src', 'postgres/cjs/src')),
      true,
    ],
    ['a serialised copy (test runner)', { name: 'TypeError', message: "Cannot read properties of null (reading 'write')", stack: BUG_STACK }, true],
    ['the same message from our own code', typeError("Cannot read properties of null (reading 'write')", '    at send (/app/worker/sender.ts:10:3)'), false],
    ['another property on null in postgres.js', typeError("Cannot read properties of null (reading 'end')", BUG_STACK), false],
    ['a different error type', Object.assign(new Error("Cannot read properties of null (reading 'write')"), { stack: BUG_STACK }), false],
    ['not an error', 'boom', false],
    ['null', null, false],
  ])('%s -> %s', (_label, error, expected) => {
    expect(isPostgresClosedSocketWrite(error)).toBe(expected);
  });
});

describe('isPostgresConnectionLoss', () => {
  it.each([
    ['postgres.js CONNECTION_CLOSED', Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' }), true],
    ['a reset socket', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    ['PostgreSQL shutting down (57P01)', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), true],
    ['a server starting up (57P03)', Object.assign(new Error('the database system is starting up'), { code: '57P03' }), true],
    ['a query error (42P01)', Object.assign(new Error('relation does not exist'), { code: '42P01' }), false],
    ['a plain error', new Error('boom'), false],
    ['a numeric code', { code: 57 }, false],
    ['null', null, false],
  ])('%s -> %s', (_label, error, expected) => {
    expect(isPostgresConnectionLoss(error)).toBe(expected);
  });
});

describe('isPostgresTypeFetchFailure', () => {
  // the query postgres.js 3.4.9 runs first on each new connection, as it attaches it to the error
  const typeQuery = `
      select b.oid, b.typarray
      from pg_catalog.pg_type a
      left join pg_catalog.pg_type b on b.oid = a.typelem
      where a.typcategory = 'A'
      group by b.oid, b.typarray
      order by b.oid
    `;
  it.each([
    ['a role that may no longer log in (28000)', Object.assign(new Error('role "r" is not permitted to log in'), { code: '28000', query: typeQuery }), true],
    ['a statement_timeout (57014)', Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014', query: typeQuery }), true],
    ['the same error on a query of ours', Object.assign(new Error('role "r" is not permitted to log in'), { code: '28000', query: 'SELECT 1' }), false],
    ['an error without a query', Object.assign(new Error('boom'), { code: '28000' }), false],
    ['null', null, false],
  ])('%s -> %s', (_label, error, expected) => {
    expect(isPostgresTypeFetchFailure(error)).toBe(expected);
  });
});

describe('isPostgresStrayRejection: what a process survives of postgres.js internals', () => {
  it.each([
    ['a lost connection', Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' }), true],
    [
      'its array-type query refused',
      Object.assign(new Error('role "r" is not permitted to log in'), { code: '28000', query: 'select b.oid, b.typarray from pg_catalog.pg_type a' }),
      true,
    ],
    ['a query error of ours', Object.assign(new Error('relation does not exist'), { code: '42P01', query: 'SELECT 1' }), false],
    ['a plain error', new Error('boom'), false],
  ])('%s -> %s', (_label, error, expected) => {
    expect(isPostgresStrayRejection(error)).toBe(expected);
  });
});
