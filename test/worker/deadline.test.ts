/** The worker's bounds on waiting for its database (worker/scheduling/deadline.ts), on a fake clock. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NoAnswer, STATEMENT_ANSWER_MS, watchProgress, within } from '../../worker/scheduling/deadline.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const never = () => new Promise<never>(() => {});

describe('within', () => {
  it('passes an answer through, and leaves no timer behind', async () => {
    await expect(within(Promise.resolve(42), 'the probe')).resolves.toBe(42);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('passes a failure through as is', async () => {
    const failure = new Error('permission denied');
    await expect(within(Promise.reject(failure), 'the probe')).rejects.toBe(failure);
  });

  it('gives up with a NoAnswer naming what waited once the bound has passed, not before', async () => {
    const waiting = within(never(), 'the idle probe');
    const outcome = waiting.then(
      () => 'answered',
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(STATEMENT_ANSWER_MS - 1);
    expect(await Promise.race([outcome, Promise.resolve('still waiting')])).toBe('still waiting');
    await vi.advanceTimersByTimeAsync(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(NoAnswer);
    expect((error as Error).message).toBe('the idle probe got no answer from the database in 10 s');
  });

  it('a query that fails after the bound is no unhandled rejection', async () => {
    let fail!: (error: Error) => void;
    const late = new Promise<never>((_, reject) => (fail = reject));
    const waiting = within(late, 'the timer', 100).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(100);
    expect(await waiting).toBeInstanceOf(NoAnswer);
    fail(new Error('CONNECTION_DESTROYED')); // the pool's replacement rejects it: handled
    await vi.advanceTimersByTimeAsync(0);
  });
});

describe('watchProgress', () => {
  it('does not fire while progress keeps coming, however long the whole takes', async () => {
    let last = Date.now();
    const watch = watchProgress(() => Date.now() - last, 5_000, 'the drain pass');
    let fired = false;
    watch.stalled.catch(() => (fired = true));
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(4_000);
      last = Date.now();
    }
    expect(fired).toBe(false);
    watch.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fires with a NoAnswer once nothing has moved for the bound', async () => {
    const last = Date.now();
    const watch = watchProgress(() => Date.now() - last, 5_000, 'the drain pass');
    const outcome = watch.stalled.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(5_000);
    const error = await outcome;
    expect(error).toBeInstanceOf(NoAnswer);
    expect((error as Error).message).toBe('the drain pass made no progress for 5 s');
  });
});
