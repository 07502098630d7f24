/**
 * The four phases of a bench run, in the order they run: the handler's write cost, drain throughput of
 * every design, commit-to-endpoint latency, and the project worker on growing backlogs. Each puts its
 * figures in the session's results; a failing step is noted there and the run goes on.
 */
import path from 'node:path';
import { fillJobs, fillOutbox } from '../backlog.ts';
import { type BenchDatabase, startBoss } from '../database.ts';
import { type DesignRun, runDesign } from '../designs/protocol.ts';
import { drainWithWorker, type WorkerSettings } from '../drain.ts';
import { measureLatency } from '../latency.ts';
import { ROOT } from '../lib/children.ts';
import { type DrainResults, writeCostRatios } from '../report/results.ts';
import { measureWriteCost } from '../write-cost.ts';
import type { Phase } from './options.ts';
import type { BenchSession } from './session.ts';

type PhaseRunner = (bench: BenchSession, database: BenchDatabase) => Promise<void>;

export const PHASE_RUNNERS: Record<Phase, PhaseRunner> = { write: writeCostPhase, drain: drainPhase, latency: latencyPhase, scaling: scalingPhase };

const rate = (r: { eventsPerSecond: number }) => `${Math.round(r.eventsPerSecond).toLocaleString('en-US')} events/s`;
const timeout = (events: number, slowestPerSecond = 1_000) => 60_000 + (events / slowestPerSecond) * 1000;
const peakMb = (r: { peakRssBytes: number | undefined }) => `peak RSS ${Math.round((r.peakRssBytes ?? 0) / 2 ** 20)} MB`;

async function writeCostPhase(bench: BenchSession, database: BenchDatabase): Promise<void> {
  const { config, throwaway } = bench.options;
  await bench.phase('write cost', async () => {
    bench.log(`write cost: ${config.writeConnections.join(' and ')} connections, ${config.writeSeconds} s per variant`);
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
      bench.results.writeCost = cost.rows;
      bench.results.writeCostRatios = writeCostRatios(cost.rows, !throwaway);
      bench.results.writeCostOtherLoad = cost.otherLoad;
    } finally {
      await boss.stop({ graceful: false, close: true, timeout: 2_000 }).catch(() => undefined);
      await database.sql`TRUNCATE posthog_outbox.outbox, bench.chat_messages`;
    }
  });
}

async function drainPhase(bench: BenchSession, database: BenchDatabase): Promise<void> {
  const { config } = bench.options;
  const events = config.drainEvents;
  const drain: DrainResults = { events, bare: [], reference: [], rawDelete: [], jobPerEvent: [], worker: [] };
  bench.results.drain = drain;
  // The reference designs read rows of one event in their columns (the design anyone would write).
  const fillOutboxBacklog = () => fillOutbox(database.sql, events);
  // The three that the main ratios compare take turns, round after round.
  for (let round = 0; round < config.drainRounds; round++) {
    await drainDesign(bench, database, drain.bare, { name: 'bare-posthog', count: events, params: { events }, until: 'capture' });
    await drainDesign(bench, database, drain.reference, { name: 'reference-outbox', count: events, params: {}, until: 'capture', fill: fillOutboxBacklog });
    await drainWorker(bench, database, drain, {});
  }
  await drainDesign(bench, database, drain.rawDelete, { name: 'raw-delete', count: events, params: { lanes: 2 }, until: 'child', fill: fillOutboxBacklog });
  for (const batchSize of config.jobBatchSizes) {
    await bench.phase(`drain: job-per-event batch ${batchSize}`, async () => {
      const boss = await startBoss(database.url);
      try {
        const fill = () => fillJobs(boss, database.sql, config.jobEvents);
        await drainDesign(bench, database, drain.jobPerEvent, {
          name: 'job-per-event',
          count: config.jobEvents,
          params: { batchSize },
          until: 'capture',
          fill,
        });
      } finally {
        await boss.stop({ graceful: false, close: true, timeout: 2_000 }).catch(() => undefined);
      }
    });
  }
  for (const settings of config.workerSweep) await drainWorker(bench, database, drain, settings);
}

/** One run of a drain design in its child process (bench/designs/<name>.ts), after filling its backlog when it has one. */
interface DesignDrain {
  name: string;
  count: number;
  params: Record<string, number>;
  until: 'capture' | 'child';
  fill?: () => Promise<void>;
}

async function drainDesign(bench: BenchSession, database: BenchDatabase, list: DesignRun[], { name, count, params, until, fill }: DesignDrain): Promise<void> {
  await bench.phase(`drain: ${name}`, async () => {
    if (fill) {
      bench.log(`drain: ${name}: filling a ${count.toLocaleString('en-US')}-event backlog`);
      await fill();
    }
    const run = await runDesign({
      design: name,
      script: `${name}.ts`,
      databaseUrl: database.url,
      postmasterPid: database.server.pid,
      capture: await bench.endpoint(),
      events: count,
      params,
      until,
      timeoutMs: timeout(count),
      nodeArgs: profileArgs(bench, name),
    });
    bench.log(`drain: ${name} ${JSON.stringify(params)}: ${rate(run)}`);
    list.push(run);
  });
}

/** One drain of the backlog by the project's worker command with these settings. */
async function drainWorker(bench: BenchSession, database: BenchDatabase, drain: DrainResults, settings: WorkerSettings): Promise<void> {
  const events = drain.events;
  await bench.phase(`drain: project worker ${JSON.stringify(settings)}`, async () => {
    bench.log(`drain: project worker ${JSON.stringify(settings)}: filling ${events.toLocaleString('en-US')} events, then draining`);
    const nodeArgs = profileArgs(bench, 'project-worker');
    const run = await drainWithWorker({ db: database, capture: await bench.endpoint(), events, settings, nodeArgs, timeoutMs: timeout(events) });
    bench.log(`drain: project worker ${run.settings.label}: ${rate(run)}, ${peakMb(run)}`);
    drain.worker.push(run);
  });
}

async function latencyPhase(bench: BenchSession, database: BenchDatabase): Promise<void> {
  const { config } = bench.options;
  await bench.phase('latency', async () => {
    bench.log(`latency: ${config.latencyRate} events/s for ${config.latencySeconds} s (+1 s warm-up)`);
    bench.results.latency = await measureLatency({
      db: database,
      capture: await bench.endpoint(),
      rate: config.latencyRate,
      seconds: config.latencySeconds,
      idleSeconds: config.idleSeconds,
    });
    const { p50Ms, p99Ms, idle } = bench.results.latency;
    bench.log(`latency: p50 ${p50Ms.toFixed(1)} ms, p99 ${p99Ms.toFixed(1)} ms; idle worker: ${idle.statementsPerSecond.toFixed(1)} statements/s`);
  });
}

async function scalingPhase(bench: BenchSession, database: BenchDatabase): Promise<void> {
  const { config } = bench.options;
  const scaling: NonNullable<typeof bench.results.scaling> = [];
  bench.results.scaling = scaling;
  for (const events of config.scaling) {
    await bench.phase(`scaling ${events}`, async () => {
      bench.log(`scaling: filling ${events.toLocaleString('en-US')} events, then draining with the project worker`);
      const run = await drainWithWorker({ db: database, capture: await bench.endpoint(), events, timeoutMs: timeout(events) });
      bench.log(`scaling: ${events.toLocaleString('en-US')}: ${rate(run)}, ${peakMb(run)}`);
      scaling.push(run);
    });
  }
  // The largest backlog once more, with Node's own heap sizing: what the command's sidecar heap saves and costs.
  const largest = Math.max(...config.scaling);
  await bench.phase(`scaling ${largest}, Node's own heap`, async () => {
    bench.log(`scaling: filling ${largest.toLocaleString('en-US')} events, then draining with the project worker (Node's own heap sizing)`);
    const run = await drainWithWorker({
      db: database,
      capture: await bench.endpoint(),
      events: largest,
      settings: { nodeHeap: true },
      timeoutMs: timeout(largest),
    });
    bench.log(`scaling: ${largest.toLocaleString('en-US')}, Node's own heap: ${rate(run)}, ${peakMb(run)}`);
    scaling.push(run);
  });
}

/** With --cpu-prof, node flags that write the process's CPU profile to .data/bench-profiles/<name>/. */
function profileArgs(bench: BenchSession, name: string): string[] {
  return bench.options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ROOT, '.data', 'bench-profiles', name)}`] : [];
}
