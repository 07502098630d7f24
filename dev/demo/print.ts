/** The demo's output: plain lines on stdout, most of them a label in a column and then the text. */

export const out = (line = '') => process.stdout.write(`${line}\n`);

/** `label` padded to a column, then the text. */
export const say = (label: string, text: string) => out(`${label.padEnd(15)} ${text}`);

/** A short time: `850 ms`, `12.4 s`. */
export function elapsed(ms: number): string {
  const rounded = Math.max(0, Math.round(ms));
  return rounded < 1000 ? `${rounded} ms` : `${(rounded / 1000).toFixed(1)} s`;
}

/** Left-aligned columns with a header row. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
