/** The demo's output: plain lines on stdout, most of them a label in a column and then the text. */

export const out = (line = '') => process.stdout.write(`${line}\n`);

/** `label` padded to a column, then the text. */
export const say = (label: string, text: string) => out(`${label.padEnd(15)} ${text}`);
