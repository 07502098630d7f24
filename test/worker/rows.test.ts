/**
 * Triage of a claimed batch (worker/rows.ts), pure: which rows are sent as recorded, which are deleted unsent
 * (superseded identifies) and which are dead-lettered unsent (expired, or stored corrupt), with the field at fault.
 */
import { describe, expect, it } from 'vitest';
import { type ClaimedRow, type ClaimSeen, NIL_UUID, nextClaimStart, openPacks, type StoredRow, triage } from '../../worker/rows.ts';

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
    automation_id: null,
    organization_id: 'org_1',
    expired: false,
    superseded: false,
    pack: null,
    source: null,
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

describe('openPacks', () => {
  const UUID_1 = '0190a000-0000-7000-8000-00000000000a';
  const UUID_2 = '0190a000-0000-7000-8000-00000000000b';
  const stored = (over: Record<string, unknown> = {}) => ({
    uuid: UUID_1,
    event: 'chat_started',
    distinct_id: 'user_1',
    properties: { thread_id: 't1' },
    groups: {},
    timestamp: '2026-01-01T00:00:00.000Z',
    user_id: 'user_1',
    user_profile: { email: 'a@example.com' },
    automation_id: null,
    automation_profile: null,
    organization_id: null,
    organization_profile: null,
    ...over,
  });
  const pack = (events: unknown) => {
    const { pack: _pack, source: _source, ...rest } = row({ uuid: 'pack-1', attempts: 2, expired: true, event: null as never, distinct_id: null as never });
    return { ...rest, events };
  };
  const fresh = () => 'fresh-uuid';

  it('a row of one event is passed as it is; a pack gives each of its events with the pack’s delivery history', () => {
    const single = { ...row({ uuid: 'single' }), events: null };
    const [one, a, b] = openPacks([single, pack([stored(), stored({ uuid: UUID_2, distinct_id: 'user_2', user_id: 'user_2' })])], fresh);
    expect(one).toMatchObject({ uuid: 'single', pack: null, source: null });
    expect(a).toMatchObject({
      uuid: UUID_1,
      distinct_id: 'user_1',
      user_id: 'user_1',
      attempts: 2,
      expired: true,
      superseded: false,
      timestamp: new Date('2026-01-01T00:00:00.000Z'),
    });
    expect(b).toMatchObject({ uuid: UUID_2, distinct_id: 'user_2', user_id: 'user_2' });
    expect(a!.pack).toBe(b!.pack);
    // the stored event, profile snapshots included, for the run's memory of what it looked at (worker/run-identities.ts)
    expect(a!.source).toEqual(stored());
    expect(a!.pack).toMatchObject({
      uuid: 'pack-1',
      clean: true,
      unpacked: false,
      events: [stored(), stored({ uuid: UUID_2, distinct_id: 'user_2', user_id: 'user_2' })],
    });
  });

  it.each([
    ['an event with no valid uuid (given a fresh one)', [stored({ uuid: 'nope' })], { uuid: 'fresh-uuid' }, { uuid: 'fresh-uuid' }],
    [
      'a timestamp not in ISO form (kept, normalised)',
      [stored({ timestamp: '2026-01-01 00:00:00Z' })],
      { timestamp: new Date('2026-01-01T00:00:00.000Z') },
      { timestamp: '2026-01-01T00:00:00.000Z' },
    ],
    ['no timestamp', [stored({ timestamp: undefined })], { timestamp: null }, { timestamp: null }],
    [
      'an impossible day that Date rolls over',
      [stored({ timestamp: '2026-02-30T00:00:00.000Z' })],
      { timestamp: new Date('2026-03-02T00:00:00.000Z') },
      { timestamp: '2026-03-02T00:00:00.000Z' },
    ],
    [
      'an event that is not an object (kept as its properties)',
      [7],
      { uuid: 'fresh-uuid', properties: 7, event: undefined },
      { uuid: 'fresh-uuid', properties: 7 },
    ],
    ['a pack that is no array (one event)', stored(), { uuid: UUID_1, event: 'chat_started' }, { uuid: UUID_1 }],
  ])('a pack holding %s is not clean: unpacked before it is deleted', (_, events, claimed, written) => {
    const [e] = openPacks([pack(events)], fresh);
    expect(e).toMatchObject(claimed);
    expect(e!.pack!.clean).toBe(false);
    expect(e!.pack!.events[0]).toMatchObject(written);
  });

  it('a corrupt event of a pack is dead-lettered by triage like a corrupt row; the sound one is sent', () => {
    const events = openPacks([pack([stored(), stored({ uuid: UUID_2, properties: 'x' })])], fresh).map((e) => ({ ...e, expired: false }));
    const { sendable, unsendable } = triage(events, DAY);
    expect(sendable.map(([e]) => e.uuid)).toEqual([UUID_1]);
    expect(unsendable.map(([e, reason]) => [e.uuid, reason])).toEqual([[UUID_2, expect.stringContaining('row.properties')]]);
  });
});

describe("nextClaimStart: where the run's next claim starts among rows never tried", () => {
  const u = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, '0')}`;
  /** A claimed row: never tried (`n`), or a retry (`-n`). */
  const stored = (n: number) => ({ ...row({ uuid: u(Math.abs(n)), attempts: n < 0 ? 2 : 0 }), events: null }) as unknown as StoredRow;
  const claim = (limit: number, rows: number[], taken: number, newest: number | null): ClaimSeen => ({
    limit,
    rows: rows.map(stored),
    batch: rows.slice(0, taken).map(stored),
    newest: newest === null ? null : u(newest),
  });

  it.each([
    ['a full claim of rows never tried: past the last one taken', NIL_UUID, claim(3, [1, 2, 3], 3, 9), u(3)],
    ['rows given back (a batch of fewer rows than claimed): past the last one taken, not further', NIL_UUID, claim(3, [1, 2, 3], 2, 9), u(2)],
    ['the scan reached the end: past the newest row there was', NIL_UUID, claim(3, [1, 2], 2, 9), u(9)],
    ['only retries (after an outage the failed rows lead): past the newest row, so no claim walks them again', NIL_UUID, claim(3, [-1, -2, -3], 3, 9), u(9)],
    ['the scan reached the end but a row never tried was given back: past the last one taken only', NIL_UUID, claim(4, [1, 2, -3], 1, 9), u(1)],
    ['a row never tried newer than `newest` (committed between the two reads): past it', NIL_UUID, claim(3, [5, 11], 2, 9), u(11)],
    ['nothing claimed at all: past the newest row', u(4), claim(3, [], 0, 9), u(9)],
    ['an empty outbox: where it was', u(4), claim(3, [], 0, null), u(4)],
    ['never back', u(20), claim(3, [1, 2], 2, 9), u(20)],
  ])('%s', (_name, current, seen, expected) => {
    expect(nextClaimStart(current, seen)).toBe(expected);
  });
});
