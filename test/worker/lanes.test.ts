/** worker/send/lanes.ts: which request an event goes in (endpoint and historical flag), as a table. */
import { describe, expect, it } from 'vitest';
import { isHistorical, requestGroups } from '../../worker/send/lanes.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const HOUR = 3_600_000;
const at = (msAgo: number) => new Date(NOW - msAgo);

describe('isHistorical', () => {
  it.each([
    ['fresh', 0, HOUR, false],
    ['exactly the threshold', HOUR, HOUR, false],
    ['one ms past it', HOUR + 1, HOUR, true],
    ['in the future', -HOUR, HOUR, false],
    ['old, lane off (0)', 30 * 24 * HOUR, 0, false],
  ])('%s', (_name, ago, after, expected) => {
    expect(isHistorical(at(ago), NOW, after)).toBe(expected);
  });
});

describe('requestGroups', () => {
  it('live analytics, live AI, historical analytics, historical AI; each keeps its order; empty ones left out', () => {
    const events = [
      { event: 'a', timestamp: at(0) },
      { event: '$ai_generation', timestamp: at(2 * HOUR) },
      { event: 'b', timestamp: at(2 * HOUR) },
      { event: '$ai_span', timestamp: at(0) },
      { event: 'c', timestamp: at(0) },
      { event: 'ai_not_prefixed', timestamp: at(0) },
    ];
    const groups = requestGroups(events, (e) => e, NOW, HOUR);
    expect(groups.map((g) => [g.historical, g.ai, g.items.map((e) => e.event)])).toEqual([
      [false, false, ['a', 'c', 'ai_not_prefixed']],
      [false, true, ['$ai_span']],
      [true, false, ['b']],
      [true, true, ['$ai_generation']],
    ]);
    expect(requestGroups(events.slice(0, 1), (e) => e, NOW, HOUR)).toHaveLength(1);
    expect(requestGroups(events, (e) => e, NOW, 0).map((g) => g.historical)).toEqual([false, false]);
  });
});
