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

/**
 * Young generation 16 MB per semi-space, old generation 160 MB: a drain of a 1M backlog at the default batch
 * size peaks at ~185 MB RSS (README "Performance"; 8 MB semi-spaces peaked the same and drained 2-7% slower:
 * twice the scavenges, each copying the batches in flight). An old generation this size still holds a batch
 * of 1,000 events of 100 KB each; raise it with NODE_OPTIONS for larger batches of large events.
 */
export const SIDECAR_HEAP_FLAGS = ['--max-semi-space-size=16', '--max-old-space-size=160'] as const;

/** The flags to run the worker with, or null to run it as it is. Pure. */
export function sidecarHeapFlags(options: {
  execArgv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  bun: boolean;
}): readonly string[] | null {
  if (options.bun || options.env.POSTHOG_OUTBOX_HEAP === 'node') return null;
  // The user's own heap flags win; so does a process that already runs with ours (after the re-exec).
  const own = [...options.execArgv, ...(options.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (own.some((flag) => /^--max-(old|semi)-space-size(=|$)/.test(flag) || flag.startsWith('--max-heap-size'))) return null;
  return SIDECAR_HEAP_FLAGS;
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Replaces this process with the same command under `flags` (same pid, stdio and environment). Returns only
 * where it could not (no `process.execve`, or the exec failed: said on stderr): the caller then runs the
 * worker as it is.
 */
export function reexecWithHeapFlags(flags: readonly string[]): void {
  const execve = (process as { execve?: Execve }).execve;
  if (typeof execve !== 'function') return;
  try {
    execve.call(process, process.execPath, [process.execPath, ...flags, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], process.env);
  } catch (error) {
    process.stderr.write(`posthog-outbox: could not apply the sidecar heap limits (${(error as Error).message}); running with Node's own heap sizing\n`);
  }
}
