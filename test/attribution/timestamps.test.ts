// The time an event carries: what `record()` accepts (src/record/limits.ts `checkTimestamp`, 1970-01-01..9999-12-31 UTC),
// the builders that take a Date or read a clock refuse alike (docs/attribution.md, "Delivery"). Pure.
import { describe, expect, it } from 'vitest';
import { identifyEvent } from '../../src/attribution/profiles.ts';
import { OutboxError, startRun, toolCalled, type RunContext, type ToolCall } from '../../src/index.ts';
import { checkTimestamp, MAX_ID_LENGTH, MAX_TIMESTAMP_MS as LIMIT_MAX, MIN_TIMESTAMP_MS as LIMIT_MIN } from '../../src/record/limits.ts';
import { MAX_TIMESTAMP_MS, outsideMessage, TIMESTAMP_EDGES } from '../support/timestamps.ts';

const context: RunContext = { organization: { id: 'org_1', name: 'Acme' }, user: { id: 'user_1', email: 'ada@example.com' } };
const call: ToolCall = { toolName: 'search', source: 'mcp', latencyMs: 12, result: { ok: true } };

function thrown(fn: () => unknown): OutboxError {
  try {
    fn();
  } catch (error) {
    if (error instanceof OutboxError) return error;
    throw error;
  }
  throw new Error('expected OutboxError');
}

describe('checkTimestamp (shared by record() and the builders)', () => {
  it.each(TIMESTAMP_EDGES)('%s', (_name, at, outcome) => {
    if (outcome === 'accepted') {
      expect(checkTimestamp(at, 'timestamp')).toBe(at);
      return;
    }
    const error = thrown(() => checkTimestamp(at, 'events[2].timestamp'));
    expect(error).toMatchObject({ code: 'invalid', field: 'events[2].timestamp' });
    expect(error.message).toBe(outsideMessage('events[2].timestamp', at));
  });

  it('its bounds are the documented ones', () => {
    expect([LIMIT_MIN, LIMIT_MAX]).toEqual([Date.parse('1970-01-01T00:00:00.000Z'), MAX_TIMESTAMP_MS]);
  });

  it('refuses an invalid Date and what is no Date', () => {
    expect(thrown(() => checkTimestamp(new Date('nope'), 'timestamp'))).toMatchObject({ code: 'invalid', field: 'timestamp' });
    expect(thrown(() => checkTimestamp('2026-01-01T00:00:00.000Z', 'timestamp'))).toMatchObject({ code: 'invalid', field: 'timestamp' });
    expect(thrown(() => checkTimestamp(1_764_000_000_000, 'timestamp'))).toMatchObject({ code: 'invalid', field: 'timestamp' });
  });
});

describe('toolCalled(context, call, at)', () => {
  it.each(TIMESTAMP_EDGES)('%s', (_name, at, outcome) => {
    if (outcome === 'accepted') {
      expect(toolCalled(context, call, at).timestamp).toBe(at);
      return;
    }
    expect(thrown(() => toolCalled(context, call, at))).toMatchObject({ code: 'invalid', field: 'timestamp' });
  });

  it('without a time: none (record() uses the write time)', () => {
    expect(toolCalled(context, call).timestamp).toBeUndefined();
  });
});

describe('the run tracker: each reading of its clock (options.now) is an event time', () => {
  it.each(TIMESTAMP_EDGES)('%s', (_name, at, outcome) => {
    const now = () => at.getTime();
    if (outcome === 'accepted') {
      const run = startRun(context, {}, { now });
      expect(run.started.timestamp).toEqual(at);
      expect(run.toolCalled(call).timestamp).toEqual(at);
      expect(run.complete().timestamp).toEqual(at);
      return;
    }
    expect(thrown(() => startRun(context, {}, { now }))).toMatchObject({ code: 'invalid', field: 'options.now' });
  });

  it('a clock that leaves the range later: the tool call and the end are refused, and the run is not ended by a refused end', () => {
    let t = Date.parse('2026-11-26T12:00:00.000Z');
    const run = startRun(context, {}, { now: () => t });
    t = MAX_TIMESTAMP_MS + 1;
    expect(thrown(() => run.toolCalled(call))).toMatchObject({ code: 'invalid', field: 'options.now' });
    expect(thrown(() => run.complete())).toMatchObject({ code: 'invalid', field: 'options.now' });
    expect(thrown(() => run.fail(new Error('x')))).toMatchObject({ code: 'invalid', field: 'options.now' });
    expect(thrown(() => run.abort('timeout'))).toMatchObject({ code: 'invalid', field: 'options.now' });
    expect(run.ended).toBeNull();
    t = Number.NaN;
    expect(thrown(() => run.complete())).toMatchObject({ code: 'invalid', field: 'options.now' });
    t = Date.parse('2026-11-26T12:00:01.000Z');
    expect(run.complete().properties.duration_ms).toBe(1000);
  });
});

describe('identifyEvent (the worker and the backfill pass their clock)', () => {
  it.each(TIMESTAMP_EDGES)('%s', (_name, at, outcome) => {
    if (outcome === 'accepted') {
      expect(identifyEvent('user', 'u1', { email: 'a@example.com' }, at)!.timestamp).toBe(at);
      return;
    }
    expect(thrown(() => identifyEvent('organization', 'o1', { name: 'Acme' }, at))).toMatchObject({ code: 'invalid', field: 'timestamp' });
  });

  it("cuts a long organization's distinct id to 200 units without splitting an emoji (a lone surrogate record() refuses)", () => {
    // `$organization_` is 14 units: the emoji of this 187-unit id would straddle the 200th unit.
    const id = `${'o'.repeat(185)}😀`;
    const event = identifyEvent('organization', id, { name: 'Emoji' })!;
    expect(event.distinctId.isWellFormed()).toBe(true);
    expect(event.distinctId).toBe(`$organization_${'o'.repeat(185)}`);
    expect(event.properties.$group_key).toBe(id);
    // An id whose cut falls between two whole characters is cut at 200, as before.
    expect(identifyEvent('organization', `${'o'.repeat(184)}😀x`, { name: 'x' })!.distinctId).toHaveLength(MAX_ID_LENGTH);
  });
});
