/**
 * SIGTERM/SIGINT from the first moment: the CLI holds them while it is still loading a command (a deploy
 * may cancel a process that has only just started), so the command can honour them once it runs, rather
 * than the process dying with exit 143. Imported first by cli/main.ts: it holds them for `worker` on import.
 */
let received: NodeJS.Signals | undefined;
const hold = (signal: NodeJS.Signals) => {
  received ??= signal;
};

if (process.argv[2] === 'worker') {
  process.on('SIGTERM', hold).on('SIGINT', hold);
  // `ps` and `top` show what the process is (and no longer its flags, which may hold a key). After the
  // handlers: a process that shows this title already holds the signals.
  process.title = 'posthog-outbox worker';
}

/** Stops holding; returns the signal that arrived meanwhile, if any. */
export function takeHeldSignal(): NodeJS.Signals | undefined {
  process.off('SIGTERM', hold).off('SIGINT', hold);
  return received;
}
