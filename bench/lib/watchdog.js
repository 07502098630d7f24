/**
 * Preloaded (`node --import`) into every benchmark child, the project's worker included: when the bench
 * process that started it is gone (killed with SIGKILL, say), the child stops itself with SIGTERM, so no
 * child outlives a bench run. Checks the parent PID every half second, on an unref'd timer.
 */
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 500).unref();
