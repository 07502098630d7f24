/**
 * Durations as text, the one form every duration takes outside the library's API (which takes
 * milliseconds, in options named `...Ms`): a whole number and a unit, `500ms`, `30s`, `10m`, `36h`, `7d`,
 * or `0` alone. A bare number other than 0 is not a duration: `10000` could mean seconds or milliseconds.
 * Pure.
 */

const UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;

const MS_PER_UNIT: Readonly<Record<string, number>> = Object.fromEntries(UNITS);

/** The units `parseDuration` accepts, for messages. */
export const DURATION_UNITS = UNITS.map(([unit]) => unit)
  .reverse()
  .join(', ');

/** `7d` -> 604800000; `0` -> 0; anything else (no unit, a fraction, a negative) -> undefined. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const match = /^(\d+)\s*(ms|s|m|h|d)$/.exec(trimmed);
  if (!match) return undefined;
  const ms = Number(match[1]) * MS_PER_UNIT[match[2]!]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** 604800000 -> `7d`, 90000 -> `90s`, 1500 -> `1500ms`: the largest unit that gives a whole number, as `parseDuration` reads it. */
export function formatDuration(ms: number): string {
  if (!Number.isInteger(ms)) return Number.isFinite(ms) ? `${ms}ms` : String(ms);
  if (ms === 0) return '0';
  const [unit, size] = UNITS.find(([, size]) => ms % size === 0)!;
  return `${ms / size}${unit}`;
}
