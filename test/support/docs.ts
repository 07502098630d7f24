/**
 * The documentation the tests execute: a fenced block found by its info string (```sql grants), read from the
 * page it lives on, so that the text a reader copies is the text the test runs.
 */
import { readFileSync } from 'node:fs';

/** The repository's root. */
export const ROOT = new URL('../../', import.meta.url);

/** The text of `page` (a path from the repository's root, e.g. `docs/hosted-postgres.md`). */
export function readDoc(page: string): string {
  return readFileSync(new URL(page, ROOT), 'utf8');
}

/** The body of the first block of `page` fenced as ```<info> (e.g. `sql grants`), ending with its last newline. */
export function docBlock(page: string, info: string): string {
  const block = new RegExp(`^\`\`\`${info.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n([\\s\\S]*?)^\`\`\`$`, 'm').exec(readDoc(page));
  if (!block) throw new Error(`${page} has no \`\`\`${info} block`);
  return block[1]!;
}
