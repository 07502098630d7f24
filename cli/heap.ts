/**
 * The worker command's own heap settings. Node sizes its heap for a machine, not for a sidecar: left alone,
 * a worker draining a large backlog lets garbage pile up to several hundred MB before collecting it. So
 * `posthog-outbox worker` runs itself in a child Node with heap limits sized for a sidecar
 * (`SIDECAR_HEAP_FLAGS`), unless the user set heap limits of their own (in `NODE_OPTIONS` or on the
 * command line), runs under another runtime (Bun), or set `POSTHOG_OUTBOX_HEAP=node` (Node's own sizing).
 *
 * The parent only waits: it forwards SIGTERM, SIGINT and SIGHUP to the child (which runs in its own process
 * group, so a terminal's Ctrl-C reaches it once, through the parent) and exits with the child's code. A
 * child ended by a signal the parent forwarded (it was still starting, before its own handlers) stopped as
 * asked: exit 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Young generation 8 MB per semi-space, old generation 160 MB: a drain at the default batch size keeps under
 * 200 MB RSS (README "Performance"). An old generation this size still holds a batch of 1,000 events of
 * 100 KB each; raise it with NODE_OPTIONS for larger batches of large events.
 */
export const SIDECAR_HEAP_FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=160'] as const;

/** Set in the child (`sidecar:<parent pid>`), so it never re-spawns itself; `node` opts out of the sidecar heap. */
const MARKER = 'POSTHOG_OUTBOX_HEAP';

/** The flags to re-run the worker with, or null to run it in this process as is. Pure. */
export function heapRespawnFlags(options: {
  execArgv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  bun: boolean;
}): readonly string[] | null {
  if (options.bun || options.env[MARKER] !== undefined) return null;
  const own = [...options.execArgv, ...(options.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (own.some((flag) => /^--max-(old|semi)-space-size(=|$)/.test(flag) || flag.startsWith('--max-heap-size'))) return null;
  return SIDECAR_HEAP_FLAGS;
}

const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Runs this same command in a child Node with `flags`; resolves with the exit code to end with. */
export function runWithHeapFlags(flags: readonly string[]): Promise<number> {
  // Forwarding starts before the spawn: a signal that arrives while it runs is passed on right after.
  const forwarded = new Set<NodeJS.Signals>();
  let child: ChildProcess | undefined;
  const forward = (signal: NodeJS.Signals) => {
    forwarded.add(signal);
    child?.kill(signal);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  child = spawn(process.execPath, [...flags, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, [MARKER]: `sidecar:${process.pid}` },
  });
  for (const signal of forwarded) child.kill(signal);
  const started = child;
  return new Promise((resolve) => {
    started.once('error', (error) => {
      process.stderr.write(`posthog-outbox: could not start the worker process: ${error.message}\n`);
      resolve(1);
    });
    started.once('exit', (code, signal) => {
      for (const s of FORWARDED) process.off(s, forward);
      if (signal) resolve(forwarded.has(signal) ? 0 : 128 + (constants.signals[signal] ?? 0));
      else resolve(code ?? 1);
    });
  });
}

/**
 * In the child: stop gracefully (as on SIGTERM) if the parent goes away without forwarding a signal (it was
 * SIGKILLed), rather than running on unsupervised.
 */
export function stopWithParent(): void {
  const parent = /^sidecar:(\d+)$/.exec(process.env[MARKER] ?? '')?.[1];
  if (parent === undefined) return;
  // The parent's pid comes from the parent itself: one that died while spawning this process is noticed too.
  const check = setInterval(() => {
    if (process.ppid === Number(parent)) return;
    clearInterval(check);
    process.kill(process.pid, 'SIGTERM');
  }, 1_000).unref();
}
