/**
 * Triage of a claimed batch (worker/claim/rows.ts), pure: which rows are sent as recorded, which are deleted unsent
 * (superseded identifies) and which are dead-lettered unsent (expired, or stored corrupt), with the field at fault.
 */
import { describe, expect, it } from 'vitest';
import { type ClaimedRow, type ClaimSeen, NIL_UUID, nextClaimStart, triage } from '../../worker/claim/rows.ts';

function row(overrides: Partial<ClaimedRow> = {}): ClaimedRow {
  return {
    uuid: '0190a000-0000-7000-8000-000000000001',
    event: 'chat_started',
    distinct_id: 'user_1',
    properties: { $groups: { organization: 'org_1' }, thread_id: 't1' },
    groups: { organization: 'org_1' },
    timestamp: new Date(Date.UTC(2026, 0, 1)),
    attempts: 0,
    rejected_at: null,
    user_id: 'user_1',
    user_profile: { email: 'a@example.com' },
    automation_id: null,
    automation_profile: null,
    organization_id: 'org_1',
    organization_profile: null,
    expired: false,
    superseded: false,
    locked: 1,
    ...overrides,
  };
}

const DAY = 86_400_000;

describe('triage', () => {
  it('a sound row is sent exactly as stored', () => {
    const r = row();
    const { sendable, unsendable, superseded } = triage([r], DAY);
    expect(superseded).toEqual([]);
    expect(unsendable).toEqual([]);
    expect(sendable).toEqual([
      [r, { uuid: r.uuid, event: r.event, distinctId: r.distinct_id, properties: r.properties, groups: r.groups, timestamp: r.timestamp }],
    ]);
  });

  it.each([
    ['a blank event name', { event: '  ' }, 'row.event: is blank'],
    ['an empty distinct id', { distinct_id: '' }, 'row.distinctId: is required'],
    ['a distinct id over 200 characters', { distinct_id: 'x'.repeat(201) }, 'row.distinctId: is 201 characters'],
    ['a distinct id with a NUL', { distinct_id: 'a\u0000b' }, 'row.distinctId: contains a NUL'],
    ['properties that are a string', { properties: 'not an object' as never }, 'row.properties: must be a plain object, got a string'],
    ['properties that are an array', { properties: [1] as never }, 'row.properties: must be a plain object, got an array'],
    ['groups that are null', { groups: null as never }, 'row.groups: must be a plain object, got null'],
    ['a group key that is a number', { groups: { organization: 7 } as never }, 'row.groups.organization: must be a string, got 7'],
    ['a blank group key', { groups: { 'my team': ' ' } }, 'row.groups["my team"]: is blank'],
    ['an invalid timestamp', { timestamp: new Date(Number.NaN) }, 'row.timestamp: must be a valid Date'],
  ])('dead-letters a row stored with %s, naming the field', (_, overrides, reason) => {
    const r = row(overrides);
    const { sendable, unsendable } = triage([r, row({ uuid: 'other' })], DAY);
    expect(sendable.map(([s]) => s.uuid)).toEqual(['other']);
    expect(unsendable).toHaveLength(1);
    expect(unsendable[0]![0]).toBe(r);
    expect(unsendable[0]![1]).toContain(`invalid stored event, not sent: ${reason}`);
  });

  it('an expired row is dead-lettered with the maximum age; a superseded identify is deleted unsent; neither is checked further', () => {
    const expired = row({ uuid: 'e', expired: true, attempts: 3, event: '' });
    const superseded = row({ uuid: 's', superseded: true, properties: [] as never });
    const sorted = triage([expired, superseded], 2 * DAY);
    expect(sorted.superseded).toEqual([superseded]);
    expect(sorted.unsendable).toEqual([[expired, 'older than the maximum age (2 days) when it was claimed: not sent', 3]]);
    expect(sorted.sendable).toEqual([]);
  });
});

describe("nextClaimStart: where the run's next claim starts among rows never tried", () => {
  const u = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, '0')}`;
  /**
   * A claim of `limit` that locked `locked` rows (more than it returned: the byte budget held the rest back)
   * and returned `rows`: never tried (`n`), or retries (`-n`).
   */
  const claim = (limit: number, rows: number[], newest: number | null, locked = rows.length): ClaimSeen => ({
    limit,
    rows: rows.map((n) => row({ uuid: u(Math.abs(n)), attempts: n < 0 ? 2 : 0, locked })),
    newest: newest === null ? null : u(newest),
  });

  it.each([
    ['a full claim of rows never tried: past the last one', NIL_UUID, claim(3, [1, 2, 3], 9), u(3)],
    ['the byte budget held rows back: past the last one returned, not further', NIL_UUID, claim(3, [1, 2], 9, 3), u(2)],
    ['the scan reached the end: past the newest row there was', NIL_UUID, claim(3, [1, 2], 9), u(9)],
    ['only retries (after an outage the failed rows lead): past the newest row, so no claim walks them again', NIL_UUID, claim(3, [-1, -2, -3], 9), u(9)],
    ['retries after rows never tried, the budget holding some back: past the last one never tried', NIL_UUID, claim(4, [1, -3], 9, 4), u(1)],
    ['a row never tried newer than `newest` (committed between the two reads): past it', NIL_UUID, claim(3, [5, 11], 9), u(11)],
    ['nothing claimed at all: past the newest row', u(4), claim(3, [], 9), u(9)],
    ['an empty outbox: where it was', u(4), claim(3, [], null), u(4)],
    ['never back', u(20), claim(3, [1, 2], 9), u(20)],
  ])('%s', (_name, current, seen, expected) => {
    expect(nextClaimStart(current, seen)).toBe(expected);
  });
});
