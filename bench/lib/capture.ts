/** The bench's side of the capture endpoint child (bench/capture-child.ts). */
import path from 'node:path';
import { BENCH_DIR, spawnNode, type Child } from './children.ts';

export interface Reached {
  /** When the endpoint had accepted the awaited number of bench events. */
  at: number;
  /** When the first / last batch since the reset arrived. */
  first: number;
  last: number;
  /** Every accepted event since the reset, `$identify` and `$groupidentify` included. */
  accepted: number;
  /** Accepted events whose name does not start with `$`. */
  bench: number;
}

export interface Counts {
  accepted: number;
  bench: number;
  requests: number;
  /** When the first / last batch since the reset arrived (undefined before the first). */
  first: number | undefined;
  last: number | undefined;
}

export class CaptureEndpoint {
  readonly url: string;
  readonly child: Child;
  private nextId = 1;
  private readonly pending = new Map<number, (message: never) => void>();
  private onArrivals: ((items: [string, number][]) => void) | undefined;

  private constructor(child: Child, url: string) {
    this.child = child;
    this.url = url;
    child.process.on('message', (message: { type: string; id?: number; items?: [string, number][] }) => {
      if (message.type === 'arrivals') return this.onArrivals?.(message.items!);
      const resolve = message.id === undefined ? undefined : this.pending.get(message.id);
      if (resolve) {
        this.pending.delete(message.id!);
        resolve(message as never);
      }
    });
  }

  /** `postgresDataDir`: the bench's PostgreSQL, which the child stops if the bench dies without cleaning up. */
  static async start(postgresDataDir?: string): Promise<CaptureEndpoint> {
    const child = spawnNode('capture endpoint', path.join(BENCH_DIR, 'capture-child.ts'), [], { ipc: true, env: { BENCH_PG_DATA_DIR: postgresDataDir } });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`capture endpoint did not start:\n${child.output()}`)), 30_000);
      child.process.once('message', (message: { type: string; url: string }) => {
        clearTimeout(timer);
        if (message.type === 'listening') resolve(message.url);
        else reject(new Error(`capture endpoint: unexpected first message ${JSON.stringify(message)}`));
      });
      void child.exited.then((code) => reject(new Error(`capture endpoint exited (${String(code)}):\n${child.output()}`)));
    });
    return new CaptureEndpoint(child, url);
  }

  reset(): void {
    this.child.process.send({ type: 'reset' });
  }

  private ask<T>(message: object, timeoutMs: number, what: string): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`capture endpoint: timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`));
      }, timeoutMs);
      this.pending.set(id, ((answer: T) => {
        clearTimeout(timer);
        resolve(answer);
      }) as (message: never) => void);
      this.child.process.send({ ...message, id });
    });
  }

  /** Resolves once `count` bench events were accepted since the last reset. */
  waitFor(count: number, timeoutMs: number): Promise<Reached> {
    return this.ask<Reached>({ type: 'wait', count }, timeoutMs, `${count} events`);
  }

  counts(): Promise<Counts> {
    return this.ask<Counts>({ type: 'count' }, 10_000, 'its counts');
  }

  /** Streams `[uuid, acceptedAt]` of every accepted event to `handler` (undefined: stop). */
  arrivals(handler: ((items: [string, number][]) => void) | undefined): void {
    this.onArrivals = handler;
    this.child.process.send({ type: 'arrivals', on: handler !== undefined });
  }

  async stop(): Promise<void> {
    await this.child.stop('SIGTERM', 5_000);
  }
}
