/**
 * A real PgBouncer (Debian's `pgbouncer` package; `.ci/run` installs it) in front of the test PostgreSQL,
 * for the pooler tests: its own ini and userlist in a folder of its own, a free port, every database name
 * passed through (`* =`), in transaction or session pool mode.
 *
 * PgBouncer refuses to run as root, so as root it runs as the `postgres` system user (which the embedded
 * PostgreSQL already runs as). It is stopped by its PID; a test process that is SIGKILLed cannot stop it,
 * so every start first stops the PgBouncers whose owner process is gone (by the PID they run under, checked
 * against their command line, never by name), as dev/embedded-postgres.ts does for PostgreSQL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

export interface PgBouncer {
  readonly port: number;
  readonly pid: number;
  readonly poolMode: 'transaction' | 'session';
  /** `url` with its host and port replaced by PgBouncer's (same user, password and database). */
  url(serverUrl: string): string;
  stop(): Promise<void>;
}

const ROOT = path.join(tmpdir(), 'posthog-outbox-pgbouncer');

/** The pgbouncer binary: on PATH, or where Debian puts it (/usr/sbin is not on every PATH). */
export function pgbouncerBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v pgbouncer'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/local/sbin` },
  });
  const bin = found.stdout.trim();
  return found.status === 0 && bin ? bin : undefined;
}

const MISSING = 'pgbouncer is not installed: the pooler tests need a real PgBouncer (`apt-get install -y pgbouncer`; .ci/run installs it)';

/**
 * Whether the pooler tests run: yes when pgbouncer is installed; also yes in CI (`CI` set) when it is not,
 * so that they fail there with a clear message instead of being skipped; no on a developer machine without it.
 */
export function runPoolerTests(): boolean {
  return pgbouncerBinary() !== undefined || Boolean(process.env.CI);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills `pid` only if it is the pgbouncer running with `ini` (a recycled PID is left alone). */
async function killIfOurs(pid: number, ini: string): Promise<void> {
  try {
    if (!(await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').includes(ini)) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Stops the PgBouncers whose owner process is gone, and removes their folders. */
async function reapOrphans(): Promise<void> {
  if (!existsSync(ROOT)) return;
  for (const name of await readdir(ROOT)) {
    const dir = path.join(ROOT, name);
    try {
      const owner = JSON.parse(await readFile(path.join(dir, 'owner.json'), 'utf8')) as { owner: number; pid?: number };
      if (alive(owner.owner)) continue;
      if (owner.pid) await killIfOurs(owner.pid, path.join(dir, 'pgbouncer.ini'));
      await rm(dir, { recursive: true, force: true });
    } catch {
      // not ours, or still being written
    }
  }
}

/** The uid/gid PgBouncer runs as: the `postgres` system user when we are root, else ourselves. */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (ids.status !== 0) throw new Error('running as root, and there is no `postgres` user to run pgbouncer as (it refuses to run as root)');
  return { uid: Number(ids.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts PgBouncer in front of the server of `serverUrl` (its user and password go into the userlist).
 * `poolSize`: server connections per database and user (default 4).
 */
export async function startPgBouncer(serverUrl: string, options: { poolMode?: 'transaction' | 'session'; poolSize?: number } = {}): Promise<PgBouncer> {
  const bin = pgbouncerBinary();
  if (!bin) throw new Error(MISSING);
  await reapOrphans();
  const poolMode = options.poolMode ?? 'transaction';
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const dir = path.join(ROOT, `${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const port = await freePort();
  const ini = path.join(dir, 'pgbouncer.ini');
  const files: Record<string, string> = {
    'pgbouncer.ini': [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `pool_mode = ${poolMode}`,
      `default_pool_size = ${options.poolSize ?? 4}`,
      'max_client_conn = 500',
      'server_lifetime = 3600',
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
    'userlist.txt': `"${user.replaceAll('"', '""')}" "${password.replaceAll('"', '""')}"\n`,
    'owner.json': JSON.stringify({ owner: process.pid }),
  };
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text, { mode: 0o644 });
  const as = runAs();
  if (as) {
    await chown(dir, as.uid, as.gid);
    for (const name of Object.keys(files)) await chown(path.join(dir, name), as.uid, as.gid);
  }
  const child: ChildProcess = spawn(bin, [ini], { stdio: ['ignore', 'pipe', 'pipe'], ...(as ?? {}) });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const pid = child.pid!;
  await writeFile(path.join(dir, 'owner.json'), JSON.stringify({ owner: process.pid, pid }));
  const onExit = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', onExit);
  const log = async () => `${output}${await readFile(path.join(dir, 'pgbouncer.log'), 'utf8').catch(() => '')}`;
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      process.removeListener('exit', onExit);
      throw new Error(`pgbouncer did not start (exit ${child.exitCode}):\n${await log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid,
    poolMode,
    url(url: string) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    async stop() {
      process.removeListener('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT'); // PgBouncer's immediate shutdown
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
