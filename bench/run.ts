/**
 * `npm run bench` (about 10 minutes) and `npm run bench -- --quick` (under two minutes): the project side by
 * side with the designs a user would otherwise pick, on this machine, in one run (issue 5).
 *
 * One throwaway PostgreSQL and one capture endpoint (a child process) serve every phase; every drain design
 * runs in a child process of its own. Prints a table on stdout (progress goes to stderr) and writes the same
 * figures as JSON to .data/bench-results/<timestamp>.json (git-ignored); a full run of every phase without errors
 * also replaces bench/results/latest.json, the committed figures docs/performance.md quotes. Timing never fails the run: missed targets are
 * reported; the exit code is 1 only when a phase crashed.
 *
 * Flags: --quick; --only=write,drain,latency,scaling; --throwaway (PostgreSQL with fsync, synchronous_commit
 * and full_page_writes off, as the test server; the default is durable, as production); --cpu-prof (every process of the drain phase, the
 * project's workers and the designs, writes a CPU profile to .data/bench-profiles/<design>/).
 *
 * The parts: run/options.ts (flags, quick and full sizes), run/session.ts (shared state, phase failures,
 * cleanup and signals), run/phases.ts (the four phases), report/ (targets, table, JSON file).
 */
import path from 'node:path';
import { builtCli } from './drain.ts';
import { BENCH_DIR, ROOT } from './lib/children.ts';
import { writeResults } from './report/results.ts';
import { renderTable } from './report/table.ts';
import { evaluateTargets } from './report/targets.ts';
import { PHASES, parseOptions } from './run/options.ts';
import { PHASE_RUNNERS } from './run/phases.ts';
import { BenchSession } from './run/session.ts';

const options = parseOptions(process.argv.slice(2));
const bench = new BenchSession(options);
const { results } = bench;
bench.handleSignals();

async function main(): Promise<void> {
  builtCli();
  bench.log(`${results.mode} run: starting PostgreSQL and the capture endpoint`);
  const database = await bench.start();
  for (const phase of PHASES) if (options.phases.has(phase)) await PHASE_RUNNERS[phase](bench, database);
}

let crashed = false;
try {
  await main();
} catch (error) {
  if (!bench.interrupted) {
    crashed = true;
    results.errors.push({ phase: 'setup', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    bench.log(`failed: ${error instanceof Error ? error.message : String(error)}`);
  }
} finally {
  if (!bench.interrupted) await bench.cleanup();
}
if (!bench.interrupted) {
  results.durationSeconds = Math.round((Date.now() - bench.started) / 1000);
  results.targets = evaluateTargets(results);
  process.stdout.write(`${renderTable(results)}\n`);
  const everyPhase = PHASES.every((phase) => options.phases.has(phase));
  const files = await writeResults(path.join(ROOT, '.data', 'bench-results'), path.join(BENCH_DIR, 'results', 'latest.json'), results, everyPhase);
  process.stdout.write(`\nJSON: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')} (${results.durationSeconds} s)\n`);
  process.exitCode = crashed || results.errors.length > 0 ? 1 : 0;
}
