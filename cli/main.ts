#!/usr/bin/env node
/**
 * The `posthog-outbox` binary. It loads nothing before deciding whether `worker` runs here or in a child
 * Node with the sidecar heap limits (cli/heap.ts): a parent that only waits stays at Node's baseline.
 */
const heap = process.argv[2] === 'worker' ? await import('./heap.ts') : undefined;
const respawn = heap?.heapRespawnFlags({ execArgv: process.execArgv, env: process.env, bun: 'bun' in process.versions });
if (heap && respawn) {
  // `ps` shows what the process is, not its flags (which may hold a key); the child titles itself the same.
  process.title = 'posthog-outbox worker';
  process.exitCode = await heap.runWithHeapFlags(respawn);
} else {
  // First: the worker stops gracefully on a SIGTERM that arrives while the CLI is still loading.
  await import('./signals.ts');
  heap?.stopWithParent();
  await (await import('./program.ts')).run();
}
