/**
 * `npm run bench` (about 10 minutes) and `npm run bench -- --quick` (under two minutes): the project side by
 * side with the designs a user would otherwise pick, on this machine, in one run (issue 5).
 *
 * One throwaway PostgreSQL and one capture endpoint (a child process) serve every phase; every drain design
 * runs in a child process of its own. Prints a table on stdout (progress goes to stderr) and writes the same
 * figures as JSON to bench/results/<timestamp>.json. Timing never fails the run: missed targets are
 * reported; the exit code is 1 only when a phase crashed.
 *
 * Flags: --quick; --only=write,drain,latency,scaling; --throwaway (PostgreSQL with fsync, synchronous_commit
 * and full_page_writes off, as the test server; the default is durable, as production); --cpu-prof (every process of the drain phase, the
 * project's workers and the designs, writes a CPU profile to .data/bench-profiles/<design>/).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isPostgresClosedSocketWrite } from '../src/postgres-workaround.ts';
import { fillJobs, fillOutbox } from './backlog.ts';
import { startBoss, startDatabase, type BenchDatabase } from './database.ts';
import { runDesign, type DesignRun } from './designs/protocol.ts';
import { drainWithWorker, type WorkerDrain, type WorkerSettings } from './drain.ts';
import { measureLatency } from './latency.ts';
import { CaptureEndpoint } from './lib/capture.ts';
import { BENCH_DIR, killAllChildrenNow, ROOT, stopAllChildren } from './lib/children.ts';
import { renderTable } from './report/table.ts';
import { machineInfo, type Results, writeCostRatios, writeResults } from './report/results.ts';
import { evaluateTargets } from './report/targets.ts';
import { measureWriteCost } from './write-cost.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const cpuProf = args.includes('--cpu-prof');
const throwaway = args.includes('--throwaway');
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const PHASES = ['write', 'drain', 'latency', 'scaling'] as const;
const phases = new Set(only ?? PHASES);
for (const phase of phases) if (!(PHASES as readonly string[]).includes(phase)) throw new Error(`unknown phase ${phase}; phases: ${PHASES.join(', ')}`);

const config = quick
  ? {
      writeSeconds: 1,
      writeRounds: 2,
      writeConnections: [1, 16],
      drainEvents: 20_000,
      drainRounds: 1,
      jobEvents: 10_000,
      jobBatchSizes: [100, 1000],
      workerSweep: [{ processes: 2 }] as WorkerSettings[],
      latencySeconds: 5,
      latencyRate: 1000,
      scaling: [10_000, 10_000, 50_000],
    }
  : {
      writeSeconds: 6,
      writeRounds: 3,
      writeConnections: [1, 16],
      drainEvents: 200_000,
      drainRounds: 2,
      jobEvents: 200_000,
      jobBatchSizes: [50, 200, 1000],
      workerSweep: [{ concurrency: 1 }, { concurrency: 4 }, { processes: 2 }, { processes: 2, concurrency: 1 }, { nodeHeap: true }] as WorkerSettings[],
      latencySeconds: 30,
      latencyRate: 1000,
      scaling: [10_000, 10_000, 10_000, 100_000, 1_000_000],
    };

const started = Date.now();
const log = (message: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);

// --- cleanup: every child by PID, then PostgreSQL; also on Ctrl-C ---------------------------------------------

let db: BenchDatabase | undefined;
let capture: CaptureEndpoint | undefined;
let cleaning: Promise<void> | undefined;
let interrupted = false;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAllChildren(5_000);
    await db?.sql.end({ timeout: 2 }).catch(() => undefined);
    await db?.server.stop().catch(() => undefined);
  })();
  return cleaning;
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(signal, () => {
    if (interrupted) {
      // A second Ctrl-C: no more waiting.
      killAllChildrenNow();
      process.exit(code);
    }
    interrupted = true;
    log(`${signal}: stopping the child processes and PostgreSQL`);
    void cleanup().finally(() => process.exit(code));
  });
}
process.on('exit', killAllChildrenNow);
process.on('uncaughtException', (error) => {
  // postgres.js writes on a socket PostgreSQL already closed (porsager/postgres#1208; the server stops on
  // Ctrl-C with the rest of the process group): that query has failed already, nothing to do.
  // While stopping, whatever breaks as connections and children go away is moot too.
  if (isPostgresClosedSocketWrite(error) || interrupted) return;
  log(`uncaught error: ${error.stack ?? String(error)}`);
  interrupted = true;
  void cleanup().finally(() => process.exit(1));
});

// --- phases -------------------------------------------------------------------------------------------------

const results: Results = {
  mode: quick ? 'quick' : 'full',
  durable: !throwaway,
  startedAt: new Date(started).toISOString(),
  config: { ...config, phases: [...phases] },
  errors: [],
};

async function phase(name: string, body: () => Promise<void>): Promise<void> {
  if (interrupted) return;
  try {
    await body();
  } catch (error) {
    if (interrupted) return;
    const message = error instanceof Error ? error.message : String(error);
    log(`${name} failed: ${message}`);
    results.errors.push({ phase: name, error: message });
    // Leave nothing of the failed phase running into the next.
    await stopAllChildren(5_000).catch(() => undefined);
    capture = undefined;
  }
}

async function endpoint(): Promise<CaptureEndpoint> {
  if (!capture || capture.child.process.exitCode !== null) capture = await CaptureEndpoint.start(db?.server.dataDir);
  return capture;
}

async function packageVersion(name: string): Promise<string> {
  try {
    return (JSON.parse(await readFile(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const profileArgs = (name: string) => (cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ROOT, '.data', 'bench-profiles', name)}`] : []);
const rate = (r: { eventsPerSecond: number }) => `${Math.round(r.eventsPerSecond).toLocaleString('en-US')} events/s`;
const timeout = (events: number, slowestPerSecond = 1_000) => 60_000 + (events / slowestPerSecond) * 1000;

async function main(): Promise<void> {
  log(`${results.mode} run: starting PostgreSQL and the capture endpoint`);
  db = await startDatabase({ throwaway });
  const database = db;
  const packages = Object.fromEntries(
    await Promise.all(['posthog-node', 'pg-boss', 'postgres', 'drizzle-orm'].map(async (n) => [n, await packageVersion(n)] as const)),
  );
  results.machine = machineInfo(database.version, packages, database.settings);
  await endpoint();

  if (phases.has('write')) {
    await phase('write cost', async () => {
      log(`write cost: ${config.writeConnections.join(' and ')} connections, ${config.writeSeconds} s per variant`);
      const boss = await startBoss(database.url, 20);
      try {
        await database.sql`TRUNCATE posthog_outbox.outbox, bench.chat_messages`;
        await database.sql`CHECKPOINT`;
        const cost = await measureWriteCost({
          url: database.url,
          postmasterPid: database.server.pid,
          boss,
          connections: config.writeConnections,
          seconds: config.writeSeconds,
          rounds: config.writeRounds,
        });
        results.writeCost = cost.rows;
        results.writeCostRatios = writeCostRatios(cost.rows, !throwaway);
        results.writeCostOtherLoad = cost.otherLoad;
      } finally {
        await boss.stop({ graceful: false, close: true, timeout: 2_000 }).catch(() => undefined);
        await database.sql`TRUNCATE posthog_outbox.outbox, bench.chat_messages`;
      }
    });
  }

  if (phases.has('drain')) {
    const events = config.drainEvents;
    const drain = {
      events,
      bare: [] as DesignRun[],
      reference: [] as DesignRun[],
      rawDelete: [] as DesignRun[],
      jobPerEvent: [] as DesignRun[],
      worker: [] as WorkerDrain[],
    };
    results.drain = drain;
    const design = async (
      list: DesignRun[],
      name: string,
      script: string,
      count: number,
      params: Record<string, number>,
      until: 'capture' | 'child',
      fill?: () => Promise<void>,
    ) => {
      await phase(`drain: ${name}`, async () => {
        if (fill) {
          log(`drain: ${name}: filling a ${count.toLocaleString('en-US')}-event backlog`);
          await fill();
        }
        const run = await runDesign({
          design: name,
          script,
          databaseUrl: database.url,
          postmasterPid: database.server.pid,
          capture: await endpoint(),
          events: count,
          params,
          until,
          timeoutMs: timeout(count),
          nodeArgs: profileArgs(name),
        });
        log(`drain: ${name} ${JSON.stringify(params)}: ${rate(run)}`);
        list.push(run);
      });
    };
    const worker = async (settings: WorkerSettings) => {
      await phase(`drain: project worker ${JSON.stringify(settings)}`, async () => {
        log(`drain: project worker ${JSON.stringify(settings)}: filling ${events.toLocaleString('en-US')} events, then draining`);
        const nodeArgs = profileArgs('project-worker');
        const run = await drainWithWorker({ db: database, capture: await endpoint(), events, settings, nodeArgs, timeoutMs: timeout(events) });
        log(`drain: project worker ${run.settings.label}: ${rate(run)}, peak RSS ${Math.round((run.peakRssBytes ?? 0) / 2 ** 20)} MB`);
        drain.worker.push(run);
      });
    };
    // The three that the main ratios compare take turns, round after round.
    for (let round = 0; round < config.drainRounds; round++) {
      await design(drain.bare, 'bare-posthog', 'bare-posthog.ts', events, { events }, 'capture');
      await design(drain.reference, 'reference-outbox', 'reference-outbox.ts', events, {}, 'capture', () => fillOutbox(database.sql, events));
      await worker({});
    }
    await design(drain.rawDelete, 'raw-delete', 'raw-delete.ts', events, { lanes: 2 }, 'child', () => fillOutbox(database.sql, events));
    for (const batchSize of config.jobBatchSizes) {
      await phase(`drain: job-per-event batch ${batchSize}`, async () => {
        const boss = await startBoss(database.url);
        try {
          await design(drain.jobPerEvent, 'job-per-event', 'job-per-event.ts', config.jobEvents, { batchSize }, 'capture', () =>
            fillJobs(boss, database.sql, config.jobEvents),
          );
        } finally {
          await boss.stop({ graceful: false, close: true, timeout: 2_000 }).catch(() => undefined);
        }
      });
    }
    for (const settings of config.workerSweep) await worker(settings);
  }

  if (phases.has('latency')) {
    await phase('latency', async () => {
      log(`latency: ${config.latencyRate} events/s for ${config.latencySeconds} s (+1 s warm-up)`);
      results.latency = await measureLatency({ db: database, capture: await endpoint(), rate: config.latencyRate, seconds: config.latencySeconds });
      log(`latency: p50 ${results.latency.p50Ms.toFixed(1)} ms, p99 ${results.latency.p99Ms.toFixed(1)} ms`);
    });
  }

  if (phases.has('scaling')) {
    results.scaling = [];
    for (const events of config.scaling) {
      await phase(`scaling ${events}`, async () => {
        log(`scaling: filling ${events.toLocaleString('en-US')} events, then draining with the project worker`);
        const run = await drainWithWorker({ db: database, capture: await endpoint(), events, timeoutMs: timeout(events) });
        log(`scaling: ${events.toLocaleString('en-US')}: ${rate(run)}, peak RSS ${Math.round((run.peakRssBytes ?? 0) / 2 ** 20)} MB`);
        results.scaling!.push(run);
      });
    }
    // The largest backlog once more, with Node's own heap sizing: what the command's sidecar heap saves and costs.
    const largest = Math.max(...config.scaling);
    await phase(`scaling ${largest}, Node's own heap`, async () => {
      log(`scaling: filling ${largest.toLocaleString('en-US')} events, then draining with the project worker (Node's own heap sizing)`);
      const run = await drainWithWorker({
        db: database,
        capture: await endpoint(),
        events: largest,
        settings: { nodeHeap: true },
        timeoutMs: timeout(largest),
      });
      log(`scaling: ${largest.toLocaleString('en-US')}, Node's own heap: ${rate(run)}, peak RSS ${Math.round((run.peakRssBytes ?? 0) / 2 ** 20)} MB`);
      results.scaling!.push(run);
    });
  }
}

let crashed = false;
try {
  await main();
} catch (error) {
  if (!interrupted) {
    crashed = true;
    results.errors.push({ phase: 'setup', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    log(`failed: ${error instanceof Error ? error.message : String(error)}`);
  }
} finally {
  if (!interrupted) await cleanup();
}
if (!interrupted) {
  results.durationSeconds = Math.round((Date.now() - started) / 1000);
  results.targets = evaluateTargets(results);
  process.stdout.write(`${renderTable(results)}\n`);
  const file = await writeResults(path.join(BENCH_DIR, 'results'), results);
  process.stdout.write(`\nJSON: ${path.relative(process.cwd(), file)} (${results.durationSeconds} s)\n`);
  process.exitCode = crashed || results.errors.length > 0 ? 1 : 0;
}
