/** Epoch milliseconds with sub-millisecond precision, comparable across the bench's processes on one machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
