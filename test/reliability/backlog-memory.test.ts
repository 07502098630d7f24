/**
 * Memory is bounded by events and bytes, not rows: a backlog of large multi-event record() calls (1,000 calls
 * of 50 events of ~3 KB: 150 MB of JSON) drains through the CLI worker under its own heap limits, and its
 * peak RSS is reported. Before one row per event, a run's first claim read 1,000 such rows at once and the
 * worker died at start (heap out of memory), at every restart.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { attributedEvent, record } from '../../src/index.ts';
import { workerProcesses } from '../support/processes.ts';
import { outboxCount, until, type WorkerFixture } from '../support/worker.ts';

let fixture: WorkerFixture;
const spawn = workerProcesses('phc_memory', (f) => (fixture = f));

/** Peak resident set of a process, in MB (Linux: VmHWM); 0 once it has exited. */
function peakRssMb(pid: number): number {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb) / 1024;
  } catch {
    return 0;
  }
}

const CALLS = 1_000;
const PER_CALL = 50;
/** ~3 KB of properties per event, different per event (nothing for compression to fold). */
const text = (i: number) => Array.from({ length: 200 }, (_, k) => `${i}-${k}-${(i * 7919 + k * 104729) % 1000003}`).join(' ');

it(`drains ${CALLS} record() calls of ${PER_CALL} events of ~3 KB each under the worker's default heap, each event once`, async () => {
  const { sql } = fixture.db;
  const context = { organization: { id: 'org_m', name: 'Memory Co' }, user: { id: 'user_m', email: 'm@example.com' } };
  const uuids: string[] = [];
  for (let call = 0; call < CALLS; call++) {
    const events = Array.from({ length: PER_CALL }, (_, k) =>
      attributedEvent(context, 'tool_output', { n: call * PER_CALL + k, text: text(call * PER_CALL + k) }),
    );
    uuids.push(...(await record(sql, events)));
  }
  expect(await outboxCount(sql)).toBe(CALLS * PER_CALL);

  const worker = spawn();
  let peak = 0;
  const sample = setInterval(() => (peak = Math.max(peak, peakRssMb(worker.pid))), 200);
  try {
    await until(
      async () => (worker.child.exitCode !== null ? -1 : outboxCount(sql)),
      (n) => n <= 0,
      { what: 'the backlog to drain', timeoutMs: 120_000 },
    );
    expect(worker.child.exitCode, worker.output()).toBeNull(); // alive: not killed by its heap
    peak = Math.max(peak, peakRssMb(worker.pid));
  } finally {
    clearInterval(sample);
  }
  console.log(`backlog of ${CALLS} x ${PER_CALL} events of ~3 KB: drained, worker peak RSS ${peak.toFixed(0)} MB`);
  const counts = fixture.capture.countsByUuid();
  expect(uuids.filter((uuid) => counts.get(uuid) !== 1)).toEqual([]);
  // The CLI's sidecar heap (160 MB old space, cli/heap.ts) plus Node's own: far below what reading the backlog at once would take.
  expect(peak).toBeLessThan(400);
}, 180_000);
