/** The event uuids `record()` assigns (src/record/uuid.ts): UUIDv7, unique, in the order they were made. */
import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../src/record/uuid.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidv7', () => {
  it('makes version-7 uuids carrying the current time, each greater than the one before', () => {
    const before = Date.now();
    const uuids = Array.from({ length: 5_000 }, () => uuidv7());
    const after = Date.now();
    expect(uuids.every((u) => V7.test(u))).toBe(true);
    expect(new Set(uuids).size).toBe(uuids.length);
    for (let i = 1; i < uuids.length; i++) expect(uuids[i]! > uuids[i - 1]!).toBe(true);
    const millis = (u: string) => Number.parseInt(u.replace(/-/g, '').slice(0, 12), 16);
    expect(millis(uuids[0]!)).toBeGreaterThanOrEqual(before);
    expect(millis(uuids.at(-1)!)).toBeLessThanOrEqual(after + 1);
  });

  it('draws random bits that differ between uuids made in the same millisecond', () => {
    const tails = Array.from({ length: 2_000 }, () => uuidv7().slice(-8));
    expect(new Set(tails).size).toBeGreaterThan(1_990);
  });
});
