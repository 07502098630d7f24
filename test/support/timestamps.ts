/**
 * The edges of an event's time range (src/record/limits.ts `checkTimestamp`), shared by the tests of record() and of
 * the builders. The bounds are written out here, not imported: the tests check the documented range itself.
 */
export const MIN_TIMESTAMP_MS = Date.parse('1970-01-01T00:00:00.000Z');
export const MAX_TIMESTAMP_MS = Date.parse('9999-12-31T23:59:59.999Z');

/** [what it is, the Date, whether record() and the builders accept it]. A refused one is named by its ISO form. */
export const TIMESTAMP_EDGES: [string, Date, 'accepted' | 'refused'][] = [
  ['the lower bound, 1970-01-01T00:00:00.000Z', new Date(MIN_TIMESTAMP_MS), 'accepted'],
  ['the upper bound, 9999-12-31T23:59:59.999Z', new Date(MAX_TIMESTAMP_MS), 'accepted'],
  ['a time of today', new Date('2026-11-26T12:00:00.000Z'), 'accepted'],
  ['one ms before the lower bound', new Date(MIN_TIMESTAMP_MS - 1), 'refused'],
  ['one ms after the upper bound (+010000-...)', new Date(MAX_TIMESTAMP_MS + 1), 'refused'],
  ['year 10000', new Date('+010000-06-01T00:00:00.000Z'), 'refused'],
  ['year 0', new Date('0000-06-01T00:00:00.000Z'), 'refused'],
  ['year -1', new Date('-000001-06-01T00:00:00.000Z'), 'refused'],
  ['year 50 (timestamptz keeps it, postgres.js reads it back as 1950)', new Date('0050-01-01T00:00:00.000Z'), 'refused'],
  ['1900 (ClickHouse DateTime64 keeps it; before the epoch)', new Date('1900-01-01T00:00:00.000Z'), 'refused'],
  ['the greatest Date', new Date(8.64e15), 'refused'],
  ['the least Date', new Date(-8.64e15), 'refused'],
];

/** The message of a refused time under `field`. */
export function outsideMessage(field: string, at: Date): string {
  return `${field}: ${at.toISOString()} is outside 1970-01-01..9999-12-31 (UTC)`;
}
