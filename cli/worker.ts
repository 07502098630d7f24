/** `posthog-outbox worker`: runs the delivery worker until SIGTERM/SIGINT. */
import { getHeapStatistics } from 'node:v8';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { redactUrl } from '../src/config.ts';
import { OutboxError } from '../src/errors.ts';
import { isPostgresClosedSocketWrite, isPostgresStrayRejection } from '../src/postgres-workaround.ts';
import { startWorker, type Logger, type OutboxWorker, type WorkerOptions } from '../worker/index.ts';
import { resolveSettings, SETTING_FLAGS, WORKER_DEFAULTS as D } from '../worker/settings.ts';
import { takeHeldSignal } from './signals.ts';
import { checkHost, databaseUrlOption, directUrlOption, duration, integer, schemaOption, sessionUrl } from './options.ts';

interface WorkerFlags {
  databaseUrl?: string;
  directUrl?: string;
  posthogApiKey?: string;
  posthogHost: string;
  schema: string;
  batchSize: number;
  concurrency: number;
  maxAttempts?: string;
  maxAge: number;
  identifyRefresh: number;
  deadLetterRetention: number;
  retryMaxDelay: number;
  requestTimeout: number;
  leaseSeconds?: number;
  shutdownTimeout: number;
  metricsPort?: number;
  metricsHost: string;
}

export function workerCommand(): Command {
  return workerOptions(
    new Command('worker').description('Deliver the outbox to PostHog until stopped (SIGTERM/SIGINT stop it gracefully). Logs one JSON line per drain run.'),
  ).action(runWorker);
}

function workerOptions(command: Command): Command {
  return (
    command
      .addOption(databaseUrlOption())
      .addOption(directUrlOption())
      .addOption(new Option('--posthog-api-key <key>', 'PostHog project API key (prefer the environment variable)').env('POSTHOG_API_KEY'))
      .addOption(new Option('--posthog-host <url>', 'PostHog host').env('POSTHOG_HOST').default('https://us.i.posthog.com'))
      .addOption(schemaOption())
      .addOption(
        new Option('--batch-size <n>', 'events per PostHog request').env('POSTHOG_OUTBOX_BATCH_SIZE').argParser(integer(1, 10_000)).default(D.batchSize),
      )
      .addOption(
        new Option('--concurrency <n>', 'batches in flight at once').env('POSTHOG_OUTBOX_CONCURRENCY').argParser(integer(1, 64)).default(D.concurrency),
      )
      .addOption(
        new Option('--max-age <duration>', 'an event still undelivered this long after it was recorded is dead-lettered instead of sent (e.g. 7d, 36h)')
          .env('POSTHOG_OUTBOX_MAX_AGE')
          .argParser(duration(60_000, 3_650 * 86_400_000))
          .default(D.maxAgeMs, '7d'),
      )
      .addOption(
        new Option('--retry-max-delay <ms>', 'longest wait between attempts while PostHog fails (backoff doubles from 1 s up to this)')
          .env('POSTHOG_OUTBOX_RETRY_MAX_DELAY_MS')
          .argParser(integer(10, 3_600_000))
          .default(D.backoff.maxMs),
      )
      .addOption(
        new Option(
          '--identify-refresh <duration>',
          'identify an unchanged user, persona or organization again once its last identify is this old (0: once per drain run)',
        )
          .env('POSTHOG_OUTBOX_IDENTIFY_REFRESH')
          .argParser(duration(0, 365 * 86_400_000))
          .default(D.identifyRefreshMs, '24h'),
      )
      .addOption(
        new Option('--dead-letter-retention <duration>', 'dead letters older than this are deleted (they carry personal data); 0 keeps them forever')
          .env('POSTHOG_OUTBOX_DEAD_LETTER_RETENTION')
          .argParser(duration(0, 3_650 * 86_400_000))
          .default(D.deadLetterRetentionMs, '30d'),
      )
      // Gone: target failures are retried for as long as they last and event rejections dead-letter at once.
      // Still accepted (with a warning) so a deployment that passes it keeps starting.
      .addOption(new Option('--max-attempts <n>').env('POSTHOG_OUTBOX_MAX_ATTEMPTS').hideHelp())
      .addOption(
        new Option('--request-timeout <ms>', 'PostHog request timeout')
          .env('POSTHOG_OUTBOX_REQUEST_TIMEOUT_MS')
          .argParser(integer(100, 600_000))
          .default(D.requestTimeoutMs),
      )
      .addOption(
        new Option(
          '--lease-seconds <s>',
          `how long a hung worker may hold the rows it is sending before PostgreSQL frees them (a crashed one frees them at once) (default: ${D.minLeaseSeconds}, or 3x the request timeout)`,
        )
          .env('POSTHOG_OUTBOX_LEASE_SECONDS')
          .argParser(integer(1, 86_400)),
      )
      .addOption(
        new Option('--metrics-port <port>', 'serve /healthz and /metrics (Prometheus) on this port; not served when unset')
          .env('POSTHOG_OUTBOX_METRICS_PORT')
          .argParser(integer(0, 65_535)),
      )
      .addOption(new Option('--metrics-host <host>', 'interface for /healthz and /metrics').env('POSTHOG_OUTBOX_METRICS_HOST').default('0.0.0.0'))
      .addOption(new Option('--shutdown-timeout <ms>', 'how long a stop waits for batches in flight').argParser(integer(0, 600_000)).default(20_000))
  );
}

async function runWorker(flags: WorkerFlags): Promise<void> {
  // From the first moment: a deploy may cancel a process that is still starting (waiting on its database,
  // installing pg-boss): it stops what has started and exits 0, like a running one.
  const signals = stopSignals();
  const { url: databaseUrl, field: urlField } = sessionUrl(flags);
  const settings = settingsFrom(flags);
  const logger = pino({ base: { service: 'posthog-outbox' } });
  process.on('uncaughtException', (error) => onUncaught(logger, error));
  if (flags.maxAttempts !== undefined) {
    logger.warn(
      {},
      '--max-attempts (POSTHOG_OUTBOX_MAX_ATTEMPTS) no longer exists and is ignored: PostHog failures are retried for as long as they last, and an event PostHog rejects is dead-lettered once the rejection is confirmed',
    );
  }
  const worker = await startCancellable(
    {
      ...settings,
      signal: signals.starting,
      databaseUrl,
      logger,
      ...(flags.metricsPort !== undefined ? { metrics: { port: flags.metricsPort, host: flags.metricsHost } } : {}),
    },
    urlField,
  );
  if (!worker) return; // stopped while starting: exit 0
  // The heap this process may use (cli/heap.ts sizes it for a sidecar unless told otherwise).
  const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
  // (a host with credentials is refused at start; masked anyway, as every URL this process prints)
  const host = redactUrl(settings.posthog.host);
  logger.info(
    { schema: flags.schema, batchSize: flags.batchSize, concurrency: flags.concurrency, host, health: worker.healthUrl, heapLimitMb },
    'worker started',
  );
  await signals.untilStopped((signal) => {
    logger.info({ signal }, 'stopping');
    return worker.stop(flags.shutdownTimeout).then(() => logger.info(worker.totals, 'worker stopped'));
  });
  // A request that outlasted --shutdown-timeout may still hold a socket open (its rows were released and
  // go to the next worker): exit without waiting for it, up to its request timeout.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
}

/**
 * SIGTERM/SIGINT, also one held while the CLI was loading: while starting, a signal aborts `starting`;
 * `untilStopped(stop)` then hands the next one to `stop` (the handlers removed) and resolves once it settled.
 */
function stopSignals(): { starting: AbortSignal; untilStopped(stop: (signal: NodeJS.Signals) => Promise<void>): Promise<void> } {
  const starting = new AbortController();
  let onSignal = (signal: NodeJS.Signals) => starting.abort(new StartCancelled(signal));
  const handler = (signal: NodeJS.Signals) => onSignal(signal);
  process.on('SIGTERM', handler).on('SIGINT', handler);
  const early = takeHeldSignal();
  if (early) onSignal(early);
  return {
    starting: starting.signal,
    untilStopped: (stop) =>
      new Promise<void>((resolve) => {
        onSignal = (signal: NodeJS.Signals) => {
          process.off('SIGTERM', handler).off('SIGINT', handler);
          stop(signal).finally(resolve);
        };
      }),
  };
}

/** The worker's settings from its flags; bad ones throw (exit 2) before anything starts, in flag terms. */
function settingsFrom(flags: WorkerFlags) {
  if (!flags.posthogApiKey || flags.posthogApiKey.trim() === '')
    throw new OutboxError('required', 'POSTHOG_API_KEY', 'is not set; give the PostHog project API key');
  const host = checkHost(flags.posthogHost);
  const settings = {
    posthog: { apiKey: flags.posthogApiKey, host, requestTimeoutMs: flags.requestTimeout },
    schema: flags.schema,
    batchSize: flags.batchSize,
    concurrency: flags.concurrency,
    maxAgeMs: flags.maxAge,
    identifyRefreshMs: flags.identifyRefresh,
    deadLetterRetentionMs: flags.deadLetterRetention,
    backoff: { baseMs: Math.min(D.backoff.baseMs, flags.retryMaxDelay), maxMs: flags.retryMaxDelay },
    leaseSeconds: flags.leaseSeconds,
  };
  inFlagTerms(() => resolveSettings(settings));
  return settings;
}

/** An uncaught error: the known postgres.js ones are logged and survived, any other stops the process (exit 1). */
function onUncaught(logger: Logger & { fatal: Logger['error'] }, error: Error): void {
  if (isPostgresClosedSocketWrite(error)) {
    logger.warn(
      { err: error.message },
      'ignored a write on a closed database connection (postgres.js bug, porsager/postgres#1208); its query already failed, and the worker replaces its pool after a run that lost its connection',
    );
    return;
  }
  if (isPostgresStrayRejection(error)) {
    logger.warn(
      { err: error.message, code: (error as { code?: string }).code },
      'database error outside a query of ours (postgres.js internals: a lost connection or its own type query); reconnecting on the next one',
    );
    return;
  }
  logger.fatal({ err: error.stack ?? String(error) }, 'uncaught error');
  process.exit(1);
}

/**
 * startWorker, except that a start cut short by a signal resolves undefined (the process exits 0), and the
 * pooler check's error names the setting the URL came from (`urlField`).
 */
async function startCancellable(options: WorkerOptions & { logger: Logger }, urlField: string): Promise<OutboxWorker | undefined> {
  try {
    return await startWorker(options);
  } catch (error) {
    if (error instanceof StartCancelled) {
      options.logger.info({ signal: error.signal }, 'stopped while starting');
      setTimeout(() => process.exit(0), 200).unref();
      return undefined;
    }
    if (error instanceof OutboxError && error.field === 'databaseUrl') throw new OutboxError(error.code, urlField, error.message.slice('databaseUrl: '.length));
    throw error;
  }
}

/** Runs `check`, turning an OutboxError about a setting into one about its flag (`--lease-seconds: ...`). */
function inFlagTerms<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof OutboxError)) throw error;
    const flag = (field: string) => SETTING_FLAGS[field] ?? field;
    let message = error.message.slice(error.field.length + 2);
    // Setting names that are not plain words (`posthog.requestTimeoutMs`, `backoff.baseMs`) read as flags too.
    for (const [field, name] of Object.entries(SETTING_FLAGS)) if (/[.A-Z]/.test(field)) message = message.replaceAll(field, name);
    throw new OutboxError(error.code, flag(error.field), error.field === 'schema' ? `(POSTHOG_OUTBOX_SCHEMA) ${message}` : message, { cause: error });
  }
}

/** The reason a start-up was cut short by a signal. */
class StartCancelled extends Error {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super(`stopped by ${signal} while starting`);
    this.signal = signal;
  }
}
