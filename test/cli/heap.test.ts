/**
 * `posthog-outbox worker` sets its own heap (cli/heap.ts): it runs in a child Node with the sidecar heap
 * limits unless the user chose heap limits, and the parent passes signals and the exit code through.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { heapRespawnFlags, SIDECAR_HEAP_FLAGS } from '../../cli/heap.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { CLI } from '../support/cli.ts';
import { databaseAndCapture, until, type WorkerFixture } from '../support/worker.ts';

describe('heapRespawnFlags', () => {
  it.each([
    ['no heap flags anywhere: the sidecar heap', [], {}, false, SIDECAR_HEAP_FLAGS],
    ['the user set the old space in NODE_OPTIONS', [], { NODE_OPTIONS: '--enable-source-maps --max-old-space-size=512' }, false, null],
    ['the user set the young generation on the command line', ['--max-semi-space-size=32'], {}, false, null],
    ['--max-heap-size', [], { NODE_OPTIONS: '--max-heap-size=300' }, false, null],
    ['other NODE_OPTIONS only', [], { NODE_OPTIONS: '--enable-source-maps' }, false, SIDECAR_HEAP_FLAGS],
    ['already the child', [], { POSTHOG_OUTBOX_HEAP: 'sidecar:123' }, false, null],
    ['opted out: Node sizes the heap', [], { POSTHOG_OUTBOX_HEAP: 'node' }, false, null],
    ['under Bun', [], {}, true, null],
  ])('%s', (_name, execArgv, env, bun, expected) => {
    expect(heapRespawnFlags({ execArgv, env, bun })).toEqual(expected);
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
const alive = (pid: number) => {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
};

/** Every command a test started: stopped after it, also when an assertion failed halfway. */
const started: ChildProcess[] = [];
afterEach(async () => {
  for (const parent of started.splice(0)) {
    if (parent.exitCode !== null || parent.signalCode !== null) continue;
    const children = childrenOf(parent.pid!);
    parent.kill('SIGTERM'); // forwarded to the worker child
    await new Promise((resolve) => {
      parent.once('exit', resolve);
      setTimeout(resolve, 10_000).unref();
    });
    for (const pid of [parent.pid!, ...children]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
});

function startCommand(): { parent: ChildProcess; output: () => string; exited: Promise<[number | null, NodeJS.Signals | null]> } {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: fixture.db.url, POSTHOG_API_KEY: 'phc_heap', POSTHOG_HOST: fixture.capture.url };
  delete env.POSTHOG_OUTBOX_HEAP;
  delete env.NODE_OPTIONS;
  const parent = spawn(process.execPath, [CLI, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(parent);
  let out = '';
  parent.stdout!.on('data', (d) => (out += d));
  parent.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => parent.on('exit', (code, signal) => resolve([code, signal])));
  return { parent, output: () => out, exited };
}

describe('the worker command in its sidecar heap', () => {
  it('runs the worker in a child with the heap flags, delivers, and stops on SIGTERM to the parent with exit 0', async () => {
    const { parent, output, exited } = startCommand();
    await until(output, (o) => o.includes('"worker started"'), { what: 'the worker to start', timeoutMs: 30_000 });
    const [child] = childrenOf(parent.pid!);
    expect(child).toBeDefined();
    // The child runs with the sidecar heap: V8's limit is the old space plus the young generation (3 semi-spaces).
    const started = JSON.parse(
      output()
        .split('\n')
        .find((line) => line.includes('"worker started"'))!,
    ) as { heapLimitMb: number };
    expect(started.heapLimitMb).toBeGreaterThanOrEqual(160);
    expect(started.heapLimitMb).toBeLessThanOrEqual(160 + 3 * 8 + 8);
    await record(fixture.db.sql, attributedEvent({ organization: { id: 'o1' }, user: { id: 'u1' } }, 'heap_checked'));
    await fixture.capture.waitFor(1, { timeoutMs: 15_000 });
    parent.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    expect(output()).toContain('"worker stopped"');
    expect(alive(child!)).toBe(false);
  }, 60_000);

  it('a SIGTERM while it is still starting: exit 0, nothing left running', async () => {
    const { parent, exited } = startCommand();
    await until(
      () => childrenOf(parent.pid!),
      (c) => c.length > 0,
      { what: 'the child to be spawned', timeoutMs: 10_000 },
    );
    const [child] = childrenOf(parent.pid!);
    parent.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    await until(
      () => alive(child!),
      (a) => !a,
      { what: 'the child to end', timeoutMs: 15_000 },
    );
  }, 60_000);

  it('a SIGKILLed parent: the child stops by itself (gracefully) instead of running on unsupervised', async () => {
    const { parent, output, exited } = startCommand();
    await until(output, (o) => o.includes('"worker started"'), { what: 'the worker to start', timeoutMs: 30_000 });
    const [child] = childrenOf(parent.pid!);
    parent.kill('SIGKILL');
    await exited;
    await until(
      () => alive(child!),
      (a) => !a,
      { what: 'the orphaned child to stop', timeoutMs: 15_000 },
    );
  }, 60_000);

  it('a child whose parent died while spawning it (its ppid was never the parent) stops by itself too', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: fixture.db.url,
      POSTHOG_API_KEY: 'phc_heap',
      POSTHOG_HOST: fixture.capture.url,
      POSTHOG_OUTBOX_HEAP: 'sidecar:999999999',
    };
    const orphan = spawn(process.execPath, [CLI, 'worker'], { env, stdio: 'ignore' });
    const [code] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => orphan.on('exit', (c, s) => resolve([c, s])));
    expect(code).toBe(0);
  }, 60_000);
});
