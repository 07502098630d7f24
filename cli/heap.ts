/**
 * The worker command's own heap settings. Node sizes its heap for a machine, not for a sidecar: left alone,
 * a worker draining a large backlog lets garbage pile up to several hundred MB before collecting it. So
 * `posthog-outbox worker` replaces itself, before it loads anything, with the same command under heap limits
 * sized for a sidecar (`SIDECAR_HEAP_FLAGS`): `process.execve`, so it stays one process with the same pid
 * (signals, exit codes and the supervisor's view are untouched). Not when the user set heap limits of their
 * own (in `NODE_OPTIONS` or on the command line), set `POSTHOG_OUTBOX_HEAP=node` (Node's own sizing), or runs
 * under another runtime (Bun); where `process.execve` does not exist (Windows, Node before 22.15) the worker
 * runs with Node's own sizing. The "worker started" log line says which heap limit it got (`heapLimitMb`).
 */
import { spawnSync } from 'node:child_process';

/**
 * Young generation 8 MB per semi-space, old generation 160 MB, and the old generation allowed to double
 * between full collections (`--heap-growing-percent=100`). With an old-space limit this small (under V8's
 * 256 MB "small heap" bound on 64-bit) V8 lets the old generation grow only ~1.3x its live size before the
 * next full collection: the batches in flight get promoted, so a worker draining a backlog ran a full
 * collection every ~180 ms, most of the sidecar heap's CPU. Measured on a 1M backlog (built command, variants
 * taking turns, two rounds): 38.6-39.6 us/event of process CPU and 180-183 MB peak RSS, against
 * 44.0-45.7 us and 176-180 MB with 16 MB semi-spaces and V8's factor, and 32.7-33.1 us and 359-363 MB with
 * Node's own sizing; 16 MB semi-spaces with the doubling peaked at 194-210 MB. An old generation this size
 * still holds a batch of 1,000 events of 100 KB each; raise it with NODE_OPTIONS for larger batches of large
 * events.
 */
export const SIDECAR_HEAP_FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=160', '--heap-growing-percent=100'] as const;

/** The flags to run the worker with, or null to run it as it is. Pure. */
export function sidecarHeapFlags(options: {
  execArgv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  bun: boolean;
}): readonly string[] | null {
  if (options.bun || options.env.POSTHOG_OUTBOX_HEAP === 'node') return null;
  // The user's own heap flags win; so does a process that already runs with ours (after the re-exec).
  const own = [...options.execArgv, ...(options.env.NODE_OPTIONS ?? '').split(/\s+/)];
  // V8 reads `_` and `-` alike in a flag's name.
  if (own.some((flag) => /^--(max-(old|semi)-space-size|max-heap-size|heap-growing-percent)$/.test(flag.split('=')[0]!.replaceAll('_', '-')))) return null;
  return SIDECAR_HEAP_FLAGS;
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Whether this Node starts with `flags`. `--heap-growing-percent` is V8's, not Node's: a Node whose V8 dropped
 * or renamed it would refuse to start ("bad option", exit 9), and after the exec that would be the worker's
 * own start failing, over and over under a supervisor. So the flags are tried first in an empty Node process
 * (~50 ms, once per start).
 */
export function nodeAccepts(flags: readonly string[]): boolean {
  const tried = spawnSync(process.execPath, [...flags, '-e', ''], { stdio: 'ignore', timeout: 10_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return tried.status === 0;
}

/**
 * Replaces this process with the same command under `flags` (same pid, stdio and environment). Returns only
 * where it could not (no `process.execve`, a Node that refuses the flags, or the exec failed: said on
 * stderr): the caller then runs the worker as it is.
 */
export function reexecWithHeapFlags(flags: readonly string[]): void {
  const execve = (process as { execve?: Execve }).execve;
  if (typeof execve !== 'function') return;
  if (!nodeAccepts(flags)) {
    process.stderr.write(`posthog-outbox: this Node does not start with ${flags.join(' ')}; running with Node's own heap sizing\n`);
    return;
  }
  try {
    execve.call(process, process.execPath, [process.execPath, ...flags, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], process.env);
  } catch (error) {
    process.stderr.write(`posthog-outbox: could not apply the sidecar heap limits (${(error as Error).message}); running with Node's own heap sizing\n`);
  }
}
