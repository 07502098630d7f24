/**
 * What every phase of a bench run shares: the results being gathered, the progress log, the one PostgreSQL
 * and the one capture endpoint, and the cleanup (every child by PID, then PostgreSQL; also on Ctrl-C).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isPostgresClosedSocketWrite } from '../../src/connection/postgres-workaround.ts';
import { type BenchDatabase, startDatabase } from '../database.ts';
import { CaptureEndpoint } from '../lib/capture.ts';
import { killAllChildrenNow, ROOT, stopAllChildren } from '../lib/children.ts';
import { machineInfo, type Results } from '../report/results.ts';
import type { BenchOptions } from './options.ts';

export class BenchSession {
  readonly options: BenchOptions;
  readonly started = Date.now();
  readonly results: Results;
  /** Set on Ctrl-C or an uncaught error: no further phase starts, and what fails from now on is moot. */
  interrupted = false;
  private db: BenchDatabase | undefined;
  private capture: CaptureEndpoint | undefined;
  private cleaning: Promise<void> | undefined;

  constructor(options: BenchOptions) {
    this.options = options;
    this.results = {
      mode: options.quick ? 'quick' : 'full',
      durable: !options.throwaway,
      startedAt: new Date(this.started).toISOString(),
      config: { ...options.config, phases: [...options.phases] },
      errors: [],
    };
  }

  /** Progress on stderr, with the seconds since the start. */
  log(message: string): void {
    process.stderr.write(`[bench ${((Date.now() - this.started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
  }

  /** Starts PostgreSQL and the capture endpoint and notes the machine, the server and the package versions. */
  async start(): Promise<BenchDatabase> {
    this.db = await startDatabase({ throwaway: this.options.throwaway });
    const database = this.db;
    const packages = Object.fromEntries(
      await Promise.all(['posthog-node', 'pg-boss', 'postgres', 'drizzle-orm'].map(async (n) => [n, await packageVersion(n)] as const)),
    );
    this.results.machine = machineInfo(database.version, packages, database.settings);
    await this.endpoint();
    return database;
  }

  /** The capture endpoint, started again if it is gone (a failed phase stops it). */
  async endpoint(): Promise<CaptureEndpoint> {
    if (!this.capture || this.capture.child.process.exitCode !== null) this.capture = await CaptureEndpoint.start(this.db?.server.dataDir);
    return this.capture;
  }

  /** Runs one phase; a failure is noted in the results and the run goes on, with nothing of the phase left running. */
  async phase(name: string, body: () => Promise<void>): Promise<void> {
    if (this.interrupted) return;
    try {
      await body();
    } catch (error) {
      if (this.interrupted) return;
      const message = error instanceof Error ? error.message : String(error);
      this.log(`${name} failed: ${message}`);
      this.results.errors.push({ phase: name, error: message });
      // Leave nothing of the failed phase running into the next.
      await stopAllChildren(5_000).catch(() => undefined);
      this.capture = undefined;
    }
  }

  /** Stops every child by PID, then PostgreSQL; once, however many times it is called. */
  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      await stopAllChildren(5_000);
      await this.db?.sql.end({ timeout: 2 }).catch(() => undefined);
      await this.db?.server.stop().catch(() => undefined);
    })();
    return this.cleaning;
  }

  /** Ctrl-C and SIGTERM clean up and exit (a second one exits at once); children never outlive the process. */
  handleSignals(): void {
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      process.on(signal, () => {
        if (this.interrupted) {
          // A second Ctrl-C: no more waiting.
          killAllChildrenNow();
          process.exit(code);
        }
        this.interrupted = true;
        this.log(`${signal}: stopping the child processes and PostgreSQL`);
        void this.cleanup().finally(() => process.exit(code));
      });
    }
    process.on('exit', killAllChildrenNow);
    process.on('uncaughtException', (error) => {
      // postgres.js writes on a socket PostgreSQL already closed (porsager/postgres#1208; the server stops on
      // Ctrl-C with the rest of the process group): that query has failed already, nothing to do.
      // While stopping, whatever breaks as connections and children go away is moot too.
      if (isPostgresClosedSocketWrite(error) || this.interrupted) return;
      this.log(`uncaught error: ${error.stack ?? String(error)}`);
      this.interrupted = true;
      void this.cleanup().finally(() => process.exit(1));
    });
  }
}

async function packageVersion(name: string): Promise<string> {
  try {
    return (JSON.parse(await readFile(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
