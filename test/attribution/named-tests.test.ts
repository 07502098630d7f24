// docs/attribution.md names the tests of each rule: every test file it names exists, and where a line quotes test
// titles (“...”), each begins a string (a test or describe title) in a file named on that line.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readDoc, ROOT } from '../support/docs.ts';

const DOC = 'docs/attribution.md';
const text = readDoc(DOC);
const source = (file: string) => readFileSync(new URL(file, ROOT), 'utf8');

describe(`the tests ${DOC} names`, () => {
  const files = [...new Set([...text.matchAll(/`(test\/[\w./-]+\.test\.ts)`/g)].map((m) => m[1]!))];

  it('it names test files', () => {
    expect(files).toContain('test/attribution/llm.test.ts');
  });

  it.each(files)('%s exists', (file) => {
    expect(existsSync(new URL(file, ROOT))).toBe(true);
  });

  const quoting = text.split('\n').filter((line) => line.includes('“'));
  it.each(quoting.map((line) => [line.slice(0, 60), line]))('%s...: each quoted title is in a file of the line', (_start, line) => {
    const named = [...line.matchAll(/`(test\/[\w./-]+\.test\.ts)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(0);
    const titles = [...line.matchAll(/“([^”]+)”/g)].map((m) => m[1]!);
    const begins = (file: string, title: string) => ["'", '"', '`'].some((quote) => source(file).includes(`${quote}${title}`));
    const missing = titles.filter((title) => !named.some((file) => existsSync(new URL(file, ROOT)) && begins(file, title)));
    expect(missing).toEqual([]);
  });
});
