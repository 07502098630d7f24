/**
 * Child process: the project's PostHog-compatible capture endpoint (dev/capture-server.ts) with
 * `keepEvents: false`, so it counts millions of events without keeping them. Talks to the bench over IPC:
 *
 * - sends `{ type: 'listening', url }` once it listens;
 * - `{ type: 'reset' }`: zero the counters;
 * - `{ type: 'wait', id, count }`: answers `{ type: 'reached', id, at, first, last, accepted, bench }` once
 *   `count` bench events (names not starting with `$`, so the worker's `$identify` / `$groupidentify` are
 *   counted apart) have been accepted since the last reset;
 * - `{ type: 'count', id }`: answers `{ type: 'count', id, accepted, bench, requests }`;
 * - `{ type: 'arrivals', on }`: while on, sends `{ type: 'arrivals', items: [uuid, at][] }` for every batch.
 *
 * Times are epoch milliseconds with sub-millisecond precision (performance.timeOrigin + performance.now()).
 */
import { startCaptureServer } from '../dev/capture-server.ts';
import { stopByPid } from '../dev/embedded-postgres.ts';
import { now } from './lib/clock.ts';

type Message = { type: 'reset' } | { type: 'wait'; id: number; count: number } | { type: 'count'; id: number } | { type: 'arrivals'; on: boolean };

let bench = 0;
let requests = 0;
let first: number | undefined;
let last: number | undefined;
let arrivals = false;
let waits: { id: number; count: number }[] = [];

const send = (message: object) => process.send?.(message);

const settle = () => {
  if (waits.length === 0) return;
  const at = now();
  waits = waits.filter((w) => {
    if (bench < w.count) return true;
    send({ type: 'reached', id: w.id, at, first, last, accepted: server.accepted, bench });
    return false;
  });
};

const server = await startCaptureServer({
  keepEvents: false,
  onAccepted(batch) {
    const at = now();
    requests++;
    first ??= at;
    last = at;
    let n = 0;
    for (const e of batch) if (!e.event.startsWith('$')) n++;
    bench += n;
    if (arrivals) send({ type: 'arrivals', items: batch.map((e) => [e.uuid, at]) });
    settle();
  },
});

process.on('message', (message: Message) => {
  switch (message.type) {
    case 'reset':
      server.reset();
      bench = 0;
      requests = 0;
      first = undefined;
      last = undefined;
      return;
    case 'wait':
      waits.push({ id: message.id, count: message.count });
      settle();
      return;
    case 'count':
      send({ type: 'count', id: message.id, accepted: server.accepted, bench, requests, first, last });
      return;
    case 'arrivals':
      arrivals = message.on;
      return;
  }
});
// Done with us: close and exit.
const close = () => void server.close().finally(() => process.exit(0));
process.on('SIGTERM', close);
process.on('SIGINT', close);
// The bench died without cleaning up (SIGKILL): stop its PostgreSQL too, by the PID in postmaster.pid
// (BENCH_PG_DATA_DIR), so nothing of the run is left behind; the next start under .data/ removes the folder.
process.on('disconnect', () => {
  const dataDir = process.env.BENCH_PG_DATA_DIR;
  void (dataDir ? stopByPid(dataDir).catch(() => undefined) : Promise.resolve()).finally(close);
});

send({ type: 'listening', url: server.url });
