// docs/attribution.md: "Abort reasons" (every row) and "a run ends in exactly one way".
import { describe, expect, it } from 'vitest';
import { OutboxError, startRun, type RunContext } from '../../src/index.ts';

const person: RunContext = { organization: { id: 'org_1' }, user: { id: 'user_1' }, threadId: 't' };
const automation: RunContext = { ...person, automation: { id: 'auto_1', name: 'Digest', triggerId: 'trg_1' } };

function signalReason(reason?: unknown): unknown {
  const controller = new AbortController();
  if (arguments.length === 0) controller.abort();
  else controller.abort(reason);
  return controller.signal.reason;
}

describe('abort reasons', () => {
  it.each([
    // reason, context, expected abort_reason (null = no server event)
    ['cancelled by a person in a client', 'cancelled', person, null],
    ['cancelled on an automation run', 'cancelled', automation, 'cancelled'],
    ['server-aborted (person)', 'server-aborted', person, 'server-aborted'],
    ['server-aborted (automation)', 'server-aborted', automation, 'server-aborted'],
    ['ghost', 'ghost', person, 'ghost'],
    ['ghost (automation)', 'ghost', automation, 'ghost'],
    ['reaped', 'reaped', person, 'reaped'],
    ['reaped (automation)', 'reaped', automation, 'reaped'],
    ['timeout (automation)', 'timeout', automation, 'timeout'],
    ['timeout (person)', 'timeout', person, 'timeout'],
    ['an AbortSignal aborted with no reason (DOMException)', signalReason(), person, 'unknown'],
    ['a DOMException on an automation run', signalReason(), automation, 'unknown'],
    ['AbortSignal.timeout()-style TimeoutError', new DOMException('signal timed out', 'TimeoutError'), person, 'unknown'],
    ['an unknown string', 'shutdown', person, 'unknown'],
    ['a string differing in case', 'Cancelled', person, 'unknown'],
    ['a number', 42, person, 'unknown'],
    ['an Error', new Error('cancelled'), person, 'unknown'],
    ['undefined', undefined, person, 'unknown'],
    ['null', null, automation, 'unknown'],
    ['an object', { reason: 'cancelled' }, person, 'unknown'],
  ] as const)('%s', (_label, reason, context, expected) => {
    const run = startRun(context, { agentId: 'agent_1', mode: 'chat' });
    const event = run.abort(reason);
    expect(run.ended).toBe('aborted');
    if (expected === null) {
      expect(event).toBeNull();
      return;
    }
    expect(event?.event).toBe('chat_message_aborted');
    expect(event?.properties.abort_reason).toBe(expected);
    expect(event?.distinctId).toBe(context.automation ? 'automation_auto_1' : 'user_1');
  });

  it('an abort signal reason passes straight through: abort(signal.reason)', () => {
    const run = startRun(person);
    expect(run.abort(signalReason('server-aborted'))?.properties.abort_reason).toBe('server-aborted');
  });
});

describe('a run ends in exactly one way', () => {
  const ends: [string, (run: ReturnType<typeof startRun>) => unknown][] = [
    ['complete', (run) => run.complete()],
    ['abort', (run) => run.abort('ghost')],
    ['abort by the user (no event)', (run) => run.abort('cancelled')],
    ['fail', (run) => run.fail(new Error('x'))],
  ];
  for (const [first, endFirst] of ends) {
    for (const [second, endSecond] of ends) {
      it(`${first} then ${second} throws run_ended`, () => {
        const run = startRun(person);
        endFirst(run);
        let thrown: unknown;
        try {
          endSecond(run);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(OutboxError);
        expect(thrown).toMatchObject({ code: 'run_ended', field: 'run' });
      });
    }
  }
});
