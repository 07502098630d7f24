/**
 * What the demo started and how it stops: everything started is remembered and stopped in reverse order;
 * the first Ctrl-C (SIGINT/SIGTERM) aborts the demo, which then stops what it started; a second one kills
 * every process it started, by PID, and exits at once.
 */
import { existsSync, rmSync } from 'node:fs';
import { ignorePostgresStrayError } from '../../worker/index.ts';
import { descendants, isRunning, processesMentioning, signalQuietly } from '../processes.ts';
import { out, say } from './print.ts';

const SILENT = { info() {}, warn() {}, error() {} };

/** A connection error escaping postgres.js when the server went away: its own codes, or PostgreSQL's connection (08) and shutdown (57P) classes. */
const lostServer = (error: unknown) => /^(CONNECTION_|08|57P0)/.test(String((error as { code?: unknown } | null)?.code ?? ''));

/** The demo was stopped by SIGINT/SIGTERM. */
export class Interrupted extends Error {}

export class DemoSession {
  readonly #stopping = new AbortController();
  readonly #started: { what: string; stop: () => Promise<void> }[] = [];
  /** The embedded server's folder, once known: a second Ctrl-C kills what runs in it and deletes it. */
  #embeddedFolder: string | undefined;
  #signals = 0;

  constructor() {
    process.on('SIGINT', this.#onSignal).on('SIGTERM', this.#onSignal).on('uncaughtException', this.#onUncaught);
  }

  /** Aborted on the first SIGINT/SIGTERM. */
  get signal(): AbortSignal {
    return this.#stopping.signal;
  }

  get stopping(): boolean {
    return this.#stopping.signal.aborted;
  }

  /** Throws Interrupted once the demo is stopping: called between steps. */
  check(): void {
    if (this.stopping) throw new Interrupted();
  }

  /** `stop` runs when the demo ends, before what was started earlier. */
  started(what: string, stop: () => Promise<void>): void {
    this.#started.push({ what, stop });
  }

  usesFolder(folder: string): void {
    this.#embeddedFolder = folder;
  }

  /** Stops everything started, newest first, and says what was stopped. */
  async stopAll(): Promise<void> {
    const stopped: string[] = [];
    for (const item of this.#started.reverse()) {
      try {
        await item.stop();
        stopped.push(item.what);
      } catch (error) {
        process.stderr.write(`posthog-outbox demo: stopping the ${item.what} failed: ${(error as Error).message}\n`);
      }
    }
    out();
    say('stopped', stopped.length > 0 ? stopped.join(', ') : 'nothing was running');
    // The uncaught-error handler stays: a client library may still report its lost connections while it winds down.
    process.off('SIGINT', this.#onSignal).off('SIGTERM', this.#onSignal);
  }

  readonly #onSignal = (signal: NodeJS.Signals) => {
    this.#signals++;
    if (this.#signals === 1) {
      process.stderr.write(`\n${signal}: stopping what the demo started (again to force)\n`);
      this.#stopping.abort();
      return;
    }
    process.stderr.write(`${signal}: stopping now\n`);
    forceStop(this.#embeddedFolder);
    process.exit(130);
  };

  readonly #onUncaught = (error: Error) => {
    // postgres.js 3.4.9 lets two errors escape when PostgreSQL goes away under it (a terminal's Ctrl-C
    // reaches the server too): its write on a closed socket, and the rejection of the array-type query it
    // runs on each new connection (src/connection/postgres-workaround.ts). The queries involved have already failed,
    // and the demo's own queries report a lost server. Anything else stops the process (the embedded
    // server's exit hook stops it; the next start deletes its folder).
    if (ignorePostgresStrayError(error, SILENT) || lostServer(error)) return;
    if (this.stopping) {
      process.stderr.write(`posthog-outbox demo: ignored while stopping: ${error.message}\n`);
      return;
    }
    process.stderr.write(`posthog-outbox demo: ${error.stack ?? String(error)}\n`);
    process.exit(1);
  };
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
      const doomed = [...new Set([...descendants(process.pid), ...(folder ? processesMentioning(folder) : [])])];
      for (const pid of doomed) signalQuietly(pid, 'SIGKILL');
      while (doomed.some(isRunning) && Date.now() < deadline) pause(10);
      if (folder) rmSync(folder, { recursive: true, force: true });
      pause(50);
      const clear = (!folder || (!existsSync(folder) && processesMentioning(folder).length === 0)) && descendants(process.pid).length === 0;
      if (clear || Date.now() >= deadline) return;
    }
  } catch {
    // the next start reaps the folder (its owner process is gone)
  }
}
