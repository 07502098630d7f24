#!/usr/bin/env node
/**
 * The `posthog-outbox` binary. `worker` first replaces this process with itself under the sidecar heap
 * limits (cli/heap.ts), before loading anything else.
 */
if (process.argv[2] === 'worker') {
  const heap = await import('./heap.ts');
  const flags = heap.sidecarHeapFlags({ execArgv: process.execArgv, env: process.env, bun: 'bun' in process.versions });
  if (flags) heap.reexecWithHeapFlags(flags);
}
// First: the worker stops gracefully on a SIGTERM that arrives while the CLI is still loading.
await import('./signals.ts');
await (await import('./program.ts')).run();
