/**
 * `posthog-outbox worker` sets its own heap (cli/heap.ts): it replaces itself (same pid, one process) with
 * the same command under the sidecar heap limits, unless the user chose heap limits or opted out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeAccepts, reexecWithHeapFlags, SIDECAR_HEAP_FLAGS, sidecarHeapFlags } from '../../cli/heap.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { CLI } from '../support/cli.ts';
import { databaseAndCapture, until, type WorkerFixture } from '../support/worker.ts';

describe('sidecarHeapFlags', () => {
  it.each([
    ['no heap flags anywhere: the sidecar heap', [], {}, false, SIDECAR_HEAP_FLAGS],
    ['the user set the old space in NODE_OPTIONS', [], { NODE_OPTIONS: '--enable-source-maps --max-old-space-size=512' }, false, null],
    ['the user set the young generation on the command line', ['--max-semi-space-size=32'], {}, false, null],
    ['--max-heap-size', [], { NODE_OPTIONS: '--max-heap-size=300' }, false, null],
    ['the user set how far the heap grows', ['--heap-growing-percent=50'], {}, false, null],
    ['V8 spelling with underscores', [], { NODE_OPTIONS: '--max_old_space_size=400' }, false, null],
    ['a flag that only starts like a heap flag', ['--max-old-space-sizes'], {}, false, SIDECAR_HEAP_FLAGS],
    ['other NODE_OPTIONS only', [], { NODE_OPTIONS: '--enable-source-maps' }, false, SIDECAR_HEAP_FLAGS],
    ['already re-executed with the sidecar flags', [...SIDECAR_HEAP_FLAGS], {}, false, null],
    ['opted out: Node sizes the heap', [], { POSTHOG_OUTBOX_HEAP: 'node' }, false, null],
    ['under Bun', [], {}, true, null],
  ])('%s', (_name, execArgv, env, bun, expected) => {
    expect(sidecarHeapFlags({ execArgv, env, bun })).toEqual(expected);
  });
});

describe('a Node that refuses the flags', () => {
  // As a Node whose V8 dropped or renamed `--heap-growing-percent` would: "bad option", exit 9, before any code runs.
  const unknown = ['--max-semi-space-size=8', '--heap-growing-percentage=100'];

  it('this Node starts with the sidecar flags, and not with a flag its V8 does not know', () => {
    expect(nodeAccepts(SIDECAR_HEAP_FLAGS)).toBe(true);
    expect(nodeAccepts(unknown)).toBe(false);
  });

  it("is not exec'd into: the worker runs as it is, with Node's own heap sizing, and says so", () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    try {
      reexecWithHeapFlags(unknown); // returns (an exec with them would have ended this process)
    } finally {
      spy.mockRestore();
    }
    expect(written.join('')).toBe(
      "posthog-outbox: this Node does not start with --max-semi-space-size=8 --heap-growing-percentage=100; running with Node's own heap sizing\n",
    );
  });
});

let fixture: WorkerFixture;
databaseAndCapture('phc_heap', (f) => (fixture = f));

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
/** The process's command line as the kernel has it (after an exec: the new one). */
const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/** Every command a test started: stopped after it, also when an assertion failed halfway. */
const started: ChildProcess[] = [];
afterEach(async () => {
  for (const command of started.splice(0)) {
    if (command.exitCode !== null || command.signalCode !== null) continue;
    command.kill('SIGKILL');
    await new Promise((resolve) => command.once('exit', resolve));
  }
});

function startCommand(extraEnv: NodeJS.ProcessEnv = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: fixture.db.url, POSTHOG_API_KEY: 'phc_heap', POSTHOG_HOST: fixture.capture.url };
  delete env.POSTHOG_OUTBOX_HEAP;
  delete env.NODE_OPTIONS;
  const command = spawn(process.execPath, [CLI, 'worker'], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(command);
  let out = '';
  command.stdout!.on('data', (d) => (out += d));
  command.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => command.on('exit', (code, signal) => resolve([code, signal])));
  const startedLine = async () => {
    await until(
      () => out,
      (o) => o.includes('"worker started"'),
      { what: 'the worker to start', timeoutMs: 30_000 },
    );
    return JSON.parse(out.split('\n').find((line) => line.includes('"worker started"'))!) as { heapLimitMb: number };
  };
  return { command, output: () => out, exited, startedLine };
}

describe('the worker command in its sidecar heap', () => {
  it('runs as one process (same pid, no child) with the heap flags, delivers, and stops on SIGTERM with exit 0', async () => {
    const { command, output, exited, startedLine } = startCommand();
    const line = await startedLine();
    // Replaced itself: the pid the supervisor started is the worker, with no child, and V8's limit is the old space plus the young generation (3 semi-spaces).
    expect(line.heapLimitMb).toBeGreaterThanOrEqual(160);
    expect(line.heapLimitMb).toBeLessThanOrEqual(160 + 3 * 8 + 8);
    expect(output()).not.toMatch(/warning/i);
    expect(childrenOf(command.pid!)).toEqual([]);
    await record(fixture.db.sql, attributedEvent({ organization: { id: 'o1' }, user: { id: 'u1' } }, 'heap_checked'));
    await fixture.capture.waitFor(1, { timeoutMs: 15_000 });
    command.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    expect(output()).toContain('"worker stopped"');
  }, 60_000);

  it.each([
    ['NODE_OPTIONS heap flags of the user', { NODE_OPTIONS: '--max-old-space-size=300' }, (mb: number) => mb >= 300],
    ['POSTHOG_OUTBOX_HEAP=node', { POSTHOG_OUTBOX_HEAP: 'node' }, (mb: number) => mb > 160 + 3 * 8 + 8],
  ])(
    '%s: runs as started, with that heap',
    async (_name, env, expected) => {
      const { command, exited, startedLine } = startCommand(env);
      const line = await startedLine();
      expect(expected(line.heapLimitMb)).toBe(true);
      command.kill('SIGTERM');
      expect(await exited).toEqual([0, null]);
    },
    60_000,
  );

  it('a SIGTERM while it is still starting (loading, after the re-exec): exit 0', async () => {
    const { command, exited } = startCommand();
    // Its title is set once it holds SIGTERM (cli/signals.ts), right after the re-exec, long before it connects.
    // (A SIGTERM before that, in the first tens of milliseconds of Node's start, ends it with 143 as it would any
    // Node program: nothing has run yet.)
    await until(
      () => commandLine(command.pid!).join(' '),
      (line) => line.startsWith('posthog-outbox worker'),
      { what: 'the re-exec', timeoutMs: 10_000 },
    );
    command.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
  }, 60_000);
});
