/** Number formats and the plain-text table of the bench's report. */

export const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? 'n/a' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const ratio = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(2)}x`);
export const mb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 1024 / 1024)} MB`);

/** The fastest run of a list (best of N: noise only ever slows a run down). */
export function best<T extends { eventsPerSecond: number }>(runs: readonly T[] | undefined): T | undefined {
  if (!runs || runs.length === 0) return undefined;
  return runs.reduce((a, b) => (b.eventsPerSecond > a.eventsPerSecond ? b : a));
}

/** One column of a table: its header, its alignment, and how a row shows in it. */
export interface Column<Row> {
  header: string;
  align: 'l' | 'r';
  cell: (row: Row) => string;
}

/** Columns separated by two spaces, each as wide as its widest cell, a dashed line under the headers. */
export function table<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const headers = columns.map((c) => c.header);
  const cells = rows.map((row) => columns.map((c) => c.cell(row)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (values: string[]) =>
    values
      .map((c, i) => (columns[i]!.align === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}
