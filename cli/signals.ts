/**
 * SIGTERM/SIGINT from the first moment: the CLI holds them while it is still loading a command (a deploy
 * may cancel a process that has only just started), so the command can honour them once it runs, rather
 * than the process dying with exit 143.
 */
let received: NodeJS.Signals | undefined;
const hold = (signal: NodeJS.Signals) => {
  received ??= signal;
};

/** Starts holding the signals (the command takes them over with `takeHeldSignal`). */
export function holdSignals(): void {
  process.on('SIGTERM', hold).on('SIGINT', hold);
}

/** Stops holding; returns the signal that arrived meanwhile, if any. */
export function takeHeldSignal(): NodeJS.Signals | undefined {
  process.off('SIGTERM', hold).off('SIGINT', hold);
  return received;
}
