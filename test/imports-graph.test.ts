/**
 * No import circles among the product's modules (src/, worker/, cli/, dev/): a module that imports one that
 * imports it back (a type included) has two homes for one concept, and ES modules evaluate such a circle
 * half-initialised. Every import counts: static, `import type`, `export ... from`, `import()` and
 * `typeof import()`, resolved by TypeScript's own module resolution (the project's NodeNext).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const PRODUCT = ['src', 'worker', 'cli', 'dev'];

function productFiles(): string[] {
  return PRODUCT.flatMap((dir) =>
    readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
      .map((file) => path.join(ROOT, dir, file)),
  ).sort();
}

/** Each file's imports of other product files (paths relative to the root). */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
  };
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = new Set<string>();
    for (const { fileName } of importedFiles) {
      const resolved = ts.resolveModuleName(fileName, file, options, ts.sys).resolvedModule;
      if (resolved && known.has(resolved.resolvedFileName)) targets.add(path.relative(ROOT, resolved.resolvedFileName));
    }
    graph.set(path.relative(ROOT, file), [...targets].sort());
  }
  return graph;
}

/** The circles of `graph`: its strongly connected components of more than one module (or a module importing itself), Tarjan's algorithm. */
function importCircles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (module: string): void => {
    index.set(module, next);
    low.set(module, next);
    next++;
    stack.push(module);
    onStack.add(module);
    for (const target of graph.get(module) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(module, Math.min(low.get(module)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(module, Math.min(low.get(module)!, index.get(target)!));
      }
    }
    if (low.get(module) !== index.get(module)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== module);
    if (component.length > 1 || graph.get(module)?.includes(module)) circles.push(component.sort());
  };
  for (const module of graph.keys()) if (!index.has(module)) visit(module);
  return circles;
}

/** A circle as its members and the imports that close it: `worker/a.ts -> worker/b.ts`. */
function describeCircle(graph: ReadonlyMap<string, readonly string[]>, circle: readonly string[]): string[] {
  return circle.flatMap((module) => (graph.get(module) ?? []).filter((target) => circle.includes(target)).map((target) => `${module} -> ${target}`));
}

describe('the import graph', () => {
  it('has no circle among src/, worker/, cli/ and dev/', () => {
    const graph = importGraph(productFiles());
    expect(graph.get('worker/index.ts')).toContain('worker/scheduling/worker.ts'); // the resolution saw the graph
    expect(graph.get('cli/worker.ts')).toContain('worker/index.ts');
    expect(importCircles(graph).map((circle) => describeCircle(graph, circle))).toEqual([]);
  });

  it('finds every circle (a self-import too) and none in a chain; every kind of import is an edge', () => {
    const circles = importCircles(
      new Map([
        ['a.ts', ['b.ts']],
        ['b.ts', ['c.ts']],
        ['c.ts', ['a.ts', 'd.ts']],
        ['d.ts', []],
        ['e.ts', ['e.ts']],
      ]),
    );
    expect(circles).toEqual([['a.ts', 'b.ts', 'c.ts'], ['e.ts']]);
    expect(
      importCircles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', ['c.ts']],
          ['c.ts', []],
        ]),
      ),
    ).toEqual([]);
    // preProcessFile reports type-only imports, `export from`, `import()` and `typeof import()` alike
    const { importedFiles } = ts.preProcessFile(
      "import type { A } from './a.ts';\nexport { B } from './b.ts';\nconst c = () => import('./c.ts');\nlet d: typeof import('./d.ts');\n",
      true,
      true,
    );
    expect(importedFiles.map((f) => f.fileName)).toEqual(['./a.ts', './b.ts', './c.ts', './d.ts']);
  });
});

/**
 * The layout rules (docs/development.md, "Layout"): every product module in its concept's folder (src/ and
 * worker/ keep only their entry points and the worker's public types at the top), none over 300 lines, SQL
 * only in `*.sql.ts` modules (and migrations/), and the demo on the package's public entries alone.
 */
describe('the layout', () => {
  const files = productFiles().map((file) => path.relative(ROOT, file));

  it('puts every module of src/ and worker/ in a concept folder, but the entries and the worker types', () => {
    const loose = files.filter((file) => /^(src|worker)\/[^/]+$/.test(file));
    expect(loose).toEqual(['src/index.ts', 'worker/index.ts', 'worker/types.ts']);
  });

  it('keeps every product module under 300 lines', () => {
    const long = files.map((file) => [file, readFileSync(path.join(ROOT, file), 'utf8').split('\n').length - 1] as const).filter(([, lines]) => lines > 300);
    expect(long).toEqual([]);
  });

  it('writes SQL statements only in *.sql.ts modules', () => {
    // A string or template literal that starts a statement (comments and prose do not count: they are not literals).
    const statement = /[`'"]\s*(SELECT|INSERT INTO|UPDATE\s+\S+\s+SET|DELETE FROM|WITH\s+\w+\s+AS\s*\(|CREATE|ALTER|DROP)\b/;
    const outside = files.filter((file) => !file.endsWith('.sql.ts') && statement.test(readFileSync(path.join(ROOT, file), 'utf8')));
    // cli/backfill.ts: an example of the operator's own queries in its --help text.
    expect(outside).toEqual(['cli/backfill.ts']);
    expect(statement.test('return `SELECT 1`')).toBe(true); // the rule sees a statement
  });

  it('builds the demo on the public entries alone', () => {
    const graph = importGraph(productFiles());
    const PUBLIC = ['src/index.ts', 'src/ops/index.ts', 'worker/index.ts'];
    const reaching = [...graph]
      .filter(([file]) => file.startsWith('dev/demo/'))
      .flatMap(([file, targets]) => targets.filter((t) => !t.startsWith('dev/') && !PUBLIC.includes(t)).map((t) => `${file} -> ${t}`));
    expect(reaching).toEqual([]);
  });
});
