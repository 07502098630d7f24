/** `posthog-outbox worker`: argv -> settings (worker/settings/settings.ts, via cli/settings.ts) -> startWorker -> logs until SIGTERM/SIGINT. */
import { getHeapStatistics } from 'node:v8';
import { Command } from 'commander';
import { pino } from 'pino';
import { redactUrl } from '../src/connection/config.ts';
import { ignorePostgresStrayError, startWorker, type Logger, type OutboxWorker, type WorkerOptions } from '../worker/index.ts';
import { resolveSettings } from '../worker/settings/settings.ts';
import { databaseUrlOption, directUrlOption, sessionUrl } from './options.ts';
import { CLI_SETTINGS, settingOption, settingsInput } from './settings.ts';
import { takeHeldSignal } from './signals.ts';

export function workerCommand(): Command {
  const command = new Command('worker')
    .description('Deliver the outbox to PostHog until stopped (SIGTERM/SIGINT stop it gracefully). Logs one JSON line per drain pass.')
    .addOption(databaseUrlOption())
    .addOption(directUrlOption());
  for (const name of CLI_SETTINGS) command.addOption(settingOption(name));
  return command.action(runWorker);
}

async function runWorker(flags: Record<string, string | undefined>): Promise<void> {
  // From the first moment: a deploy may cancel a process that is still starting (waiting on its database,
  // installing pg-boss): it stops what has started and exits 0, like a running one.
  const signals = stopSignals();
  const { url: databaseUrl } = sessionUrl(flags);
  // Bad settings throw (exit 2) before anything starts.
  const input = settingsInput(flags);
  const settings = resolveSettings(input);
  const logger = pino({ base: { service: 'posthog-outbox' } });
  process.on('uncaughtException', (error) => onUncaught(logger, error));
  const worker = await startCancellable({ ...input, signal: signals.starting, databaseUrl, logger });
  if (!worker) return; // stopped while starting: exit 0
  // The heap this process may use (cli/heap.ts sizes it for a sidecar unless told otherwise).
  const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
  // (a host with credentials is refused at start; masked anyway, as every URL this process prints)
  const host = redactUrl(settings.target.host);
  const { schema, batchSize, concurrency } = settings;
  logger.info({ schema, batchSize, concurrency, host, health: worker.healthUrl, heapLimitMb }, 'worker started');
  await signals.untilStopped((signal) => {
    logger.info({ signal }, 'stopping');
    return worker.stop().then(() => logger.info(worker.totals, 'worker stopped'));
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

/** An uncaught error: the known postgres.js ones are logged and survived, any other stops the process (exit 1). */
function onUncaught(logger: Logger & { fatal: Logger['error'] }, error: Error): void {
  if (ignorePostgresStrayError(error, logger)) return;
  logger.fatal({ err: error.stack ?? String(error) }, 'uncaught error');
  process.exit(1);
}

/** startWorker, except that a start cut short by a signal resolves undefined (the process exits 0). */
async function startCancellable(options: WorkerOptions & { logger: Logger }): Promise<OutboxWorker | undefined> {
  try {
    return await startWorker(options);
  } catch (error) {
    if (error instanceof StartCancelled) {
      options.logger.info({ signal: error.signal }, 'stopped while starting');
      setTimeout(() => process.exit(0), 200).unref();
      return undefined;
    }
    throw error;
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
