/**
 * Triage of a claimed batch (worker/rows.ts), pure: which rows are sent as recorded, which are deleted unsent
 * (superseded identifies) and which are dead-lettered unsent (expired, or stored corrupt), with the field at fault.
 */
import { describe, expect, it } from 'vitest';
import { type ClaimedRow, triage } from '../../worker/rows.ts';

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
    next_attempt_at: new Date(Date.UTC(2026, 0, 1)),
    user_id: 'user_1',
    automation_id: null,
    organization_id: 'org_1',
    expired: false,
    superseded: false,
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
    expect(sorted.unsendable).toEqual([[expired, 'older than the maximum age (2 days, --max-age) when it was claimed: not sent', 3]]);
    expect(sorted.sendable).toEqual([]);
  });
});
