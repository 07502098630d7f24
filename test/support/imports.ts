/** What a fresh Node process loads: the import-cost guards (test/worker/imports.test.ts, test/clients/detect.test.ts). */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Module URLs loaded by a fresh Node process that imports `entries` (paths from the root), seen by a resolve hook. */
export function modulesLoadedBy(entries: readonly string[]): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const urls = new Set();
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.add(r.url); return r; } });
    for (const entry of ${JSON.stringify(entries.map((e) => path.join(ROOT, e)))}) await import(entry);
    process.stdout.write(JSON.stringify([...urls]));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(child.stderr.replace(/.*ExperimentalWarning.*\n|.*--trace-warnings.*\n/g, '')).toBe('');
  return JSON.parse(child.stdout) as string[];
}
