import { describe, expect, it } from 'vitest';
import { isPostgresClosedSocketWrite } from '../src/postgres-workaround.ts';

function typeError(message: string, stack: string): TypeError {
  const e = new TypeError(message);
  e.stack = `TypeError: ${message}\n${stack}`;
  return e;
}

const BUG_STACK = '    at Immediate.nextWrite (/app/node_modules/postgres/src/connection.js:255:22)\n    at process.processImmediate (node:internal/timers:574:21)';

describe('isPostgresClosedSocketWrite', () => {
  it.each([
    ['the postgres.js closed-socket write', typeError("Cannot read properties of null (reading 'write')", BUG_STACK), true],
    ['the same from the CommonJS build', typeError("Cannot read properties of null (reading 'write')", BUG_STACK.replace('postgres/src', 'postgres/cjs/src')), true],
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
