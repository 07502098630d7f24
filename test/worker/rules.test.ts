/** The worker's pure decisions, as tables: backoff, what a PostHog answer means, re-identification. */
import { describe, expect, it } from 'vitest';
import { parseRetryAfter, retryDelayMs } from '../../worker/settle/backoff.ts';
import { identifyEvents } from '../../src/identify/events.ts';
import {
  type Answer,
  type BisectionState,
  classifyAnswer,
  classifyV1Answer,
  decide,
  decideEvent,
  type EventVerdict,
  eventVerdict,
  judgePinned,
  poisonAllowance,
  rejectsBroadly,
  type Verdict,
} from '../../worker/send/outcome.ts';
import { account, accountV1, STOPPED, type WireRequest } from '../../worker/send/sender.ts';
import { DEFAULT_POLL, nextPollDelay } from '../../worker/scheduling/poll.ts';

describe('retryDelayMs', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };
  it.each([
    // attempts, random, expected
    [1, 0, 500],
    [1, 1, 1000],
    [2, 0, 1000],
    [2, 1, 2000],
    [3, 0.5, 3000],
    [6, 1, 32_000],
    [7, 1, 60_000], // capped
    [50, 0, 30_000], // capped, half-jitter floor
  ])('attempt %i with random %f waits %i ms', (attempts, random, expected) => {
    expect(retryDelayMs(attempts, policy, 0, () => random)).toBe(expected);
  });

  it('never retries before Retry-After', () => {
    expect(retryDelayMs(1, policy, 7_000, () => 0)).toBe(7_000);
    expect(retryDelayMs(6, policy, 7_000, () => 1)).toBe(32_000);
  });

  it('spreads rows that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => retryDelayMs(4, policy)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(4000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it.each([
    ['3', 3000],
    ['0', 0],
    ['1.5', 1500],
    ['Thu, 01 Jan 2026 00:00:10 GMT', 10_000],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['soon', undefined],
    ['', undefined],
    [null, undefined],
  ])('%s -> %s', (header, expected) => {
    expect(parseRetryAfter(header, now)).toBe(expected);
  });
});

describe('classifyAnswer: only PostHog capture’s answer is acceptance', () => {
  const json = 'application/json';
  it.each<[string, Answer, Verdict['kind'], RegExp?]>([
    ['classic capture {"status":1}', { status: 200, contentType: json, body: '{"status":1}' }, 'accepted'],
    ['current capture {"status":"Ok"}', { status: 200, contentType: json, body: '{"status":"Ok"}' }, 'accepted'],
    ['capture with quota_limited', { status: 200, body: '{"status":"Ok","quota_limited":["recordings"]}' }, 'accepted'],
    ['with whitespace', { status: 200, body: ' { "status" : 1 }\n' }, 'accepted'],
    [
      '200 web page',
      { status: 200, contentType: 'text/html; charset=utf-8', body: '<!doctype html><title>Welcome</title>' },
      'target',
      /HTTP 200 \(text\/html\) without PostHog's capture answer: <!doctype html>.*check POSTHOG_HOST/,
    ],
    ['200 empty', { status: 200, body: '' }, 'target', /does not look like PostHog's capture endpoint/],
    ['200 other JSON', { status: 200, body: '{"ok":true}' }, 'target', /without PostHog's capture answer/],
    ['200 status 0', { status: 200, body: '{"status":0}' }, 'target'],
    ['200 status "1" (string)', { status: 200, body: '{"status":"1"}' }, 'target'],
    ['200 status 1 plus unknown fields', { status: 200, body: '{"status":1,"error":"x"}' }, 'target'],
    ['200 JSON array', { status: 200, body: '[1]' }, 'target'],
    ['204 (capture answers it only to beacons, which posthog-node never sends)', { status: 204, body: '' }, 'target'],
    ['201 with the capture body', { status: 201, body: '{"status":1}' }, 'target'],
    [
      '301 redirect names the Location',
      { status: 301, location: 'https://eu.i.posthog.com/batch/', body: '' },
      'target',
      /redirect to "https:\/\/eu\.i\.posthog\.com\/batch\/".*not followed/,
    ],
    ['308 without Location', { status: 308, body: '' }, 'target', /nowhere/],
    ['400 is a content rejection', { status: 400, body: '{"detail":"bad"}' }, 'rejected', /^PostHog answered HTTP 400: \{"detail":"bad"\}$/],
    ['413 is a content rejection', { status: 413, body: '' }, 'rejected', /^PostHog answered HTTP 413$/],
    ['422 is a content rejection', { status: 422, body: 'x' }, 'rejected'],
    ['401 is the key', { status: 401, body: 'no' }, 'target', /HTTP 401 \(check POSTHOG_API_KEY\)/],
    ['403 is the key', { status: 403, body: '' }, 'target', /check POSTHOG_API_KEY/],
    ['404 is the host', { status: 404, body: '<html>not found</html>' }, 'target', /HTTP 404 \(check POSTHOG_HOST\)/],
    ['405 is the host', { status: 405, body: '' }, 'target', /check POSTHOG_HOST/],
    ['408', { status: 408, body: '' }, 'target'],
    ['429', { status: 429, body: '' }, 'target'],
    ['500', { status: 500, body: 'oops' }, 'target', /HTTP 500: oops/],
    ['503', { status: 503, body: '' }, 'target'],
  ])('%s', (_name, answer, kind, message) => {
    const verdict = classifyAnswer(answer);
    expect(verdict.kind).toBe(kind);
    if (message) expect((verdict as { message: string }).message).toMatch(message);
  });

  it('keeps Retry-After on a target failure and cuts a long body', () => {
    expect(classifyAnswer({ status: 429, retryAfterMs: 5000, body: '' })).toMatchObject({ kind: 'target', status: 429, retryAfterMs: 5000 });
    const long = classifyAnswer({ status: 200, body: 'x'.repeat(10_000) }) as { message: string };
    expect(long.message.length).toBeLessThan(700);
  });
});

describe('decide', () => {
  it.each<[string, Verdict, number, ReturnType<typeof decide>]>([
    ['accepted', { kind: 'accepted' }, 10, { action: 'delivered' }],
    ['a rejected batch bisects', { kind: 'rejected', status: 400, message: 'm' }, 10, { action: 'bisect' }],
    [
      'a rejected single event is pinned with the answer',
      { kind: 'rejected', status: 400, message: 'PostHog answered HTTP 400: nope' },
      1,
      { action: 'pinned', reason: 'PostHog answered HTTP 400: nope' },
    ],
    ['413 on two events bisects', { kind: 'rejected', status: 413, message: 'm' }, 2, { action: 'bisect' }],
    ['a target failure retries, even for one event', { kind: 'target', status: 503, message: 'm' }, 1, { action: 'retry', error: 'm' }],
    ['Retry-After is kept', { kind: 'target', status: 429, retryAfterMs: 5000, message: 'm' }, 10, { action: 'retry', error: 'm', retryAfterMs: 5000 }],
    ['a network error retries', { kind: 'target', message: 'network error' }, 10, { action: 'retry', error: 'network error' }],
  ])('%s', (_name, verdict, size, expected) => {
    expect(decide(verdict, size)).toEqual(expected);
  });
});

describe('the circuit breaker for systemic rejection', () => {
  it.each([
    [1, 1],
    [9, 1],
    [19, 1],
    [20, 2],
    [1000, 100],
  ])('a batch of %i may hold %i poison event(s)', (size, allowed) => {
    expect(poisonAllowance(size)).toBe(allowed);
  });

  it.each<[string, number, BisectionState, boolean]>([
    ['nothing tried yet', 1000, { accepted: 0, rejectedRequests: 0, pinned: 0 }, false],
    ['the path down to one poison event (11 refusals for 1000)', 1000, { accepted: 0, rejectedRequests: 11, pinned: 1 }, false],
    ['a second poison event next to it', 1000, { accepted: 0, rejectedRequests: 12, pinned: 2 }, false],
    ['one more refusal with nothing accepted: broad', 1000, { accepted: 0, rejectedRequests: 13, pinned: 2 }, true],
    ['many refusals, but others were accepted: still bisecting', 1000, { accepted: 500, rejectedRequests: 40, pinned: 20 }, false],
    ['more pinned than the allowance: broad', 1000, { accepted: 800, rejectedRequests: 300, pinned: 101 }, true],
    ['a lone event refused once', 1, { accepted: 0, rejectedRequests: 1, pinned: 1 }, false],
    ['both events of a pair refused', 2, { accepted: 0, rejectedRequests: 3, pinned: 2 }, true],
    ['one of a pair refused, the other accepted', 2, { accepted: 1, rejectedRequests: 2, pinned: 1 }, false],
  ])('%s', (_name, size, state, broad) => {
    expect(rejectsBroadly(size, state)).toBe(broad);
  });

  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
  it.each<[string, Parameters<typeof judgePinned>[0], 'poison' | 'unconfirmed']>([
    [
      'first rejection, even with the rest of its batch accepted: kept (a systemic rejection may just have ended)',
      { broad: false, rejectedAt: null, lastAcceptedAt: at(9) },
      'unconfirmed',
    ],
    ['broad: never dead-lettered, whatever else', { broad: true, rejectedAt: at(1), lastAcceptedAt: at(2) }, 'unconfirmed'],
    ['rejected again, nothing accepted since the first time: kept', { broad: false, rejectedAt: at(5), lastAcceptedAt: at(4) }, 'unconfirmed'],
    ['rejected again, nothing accepted since start: kept', { broad: false, rejectedAt: at(5), lastAcceptedAt: null }, 'unconfirmed'],
    ['rejected again alone, others accepted since the first time: poison', { broad: false, rejectedAt: at(5), lastAcceptedAt: at(6) }, 'poison'],
  ])('%s', (_name, input, expected) => {
    expect(judgePinned(input)).toBe(expected);
  });
});

describe('account: what became of each event of a batch, from the requests on the wire', () => {
  const ok: Verdict = { kind: 'accepted' };
  const tooLarge: Verdict = { kind: 'rejected', status: 413, message: '413' };
  const down: Verdict = { kind: 'target', status: 503, message: '503' };
  const req = (uuids: string[], verdict: Verdict): WireRequest => ({ uuids, verdict, seconds: 0.01 });
  const batch = ['a', 'b', 'c', 'd'];

  it('one accepted request: all accepted', () => {
    expect(account(batch, [req(batch, ok)], undefined)).toMatchObject({ accepted: batch, unsent: [] });
    expect(account(batch, [req(batch, ok)], undefined).failed).toBeUndefined();
  });

  it('posthog-node splitting after a 413: each accepted half counts, the 413 does not fail anything', () => {
    const report = account(batch, [req(batch, tooLarge), req(['a', 'b'], ok), req(['c', 'd'], ok)], undefined);
    expect(report).toMatchObject({ accepted: batch, unsent: [] });
    expect(report.failed).toBeUndefined();
  });

  it('split, first half accepted, second half failed: only the first half is delivered', () => {
    const report = account(batch, [req(batch, tooLarge), req(['a', 'b'], ok), req(['c', 'd'], down)], undefined);
    expect(report).toMatchObject({ accepted: ['a', 'b'], failed: { verdict: down, uuids: ['c', 'd'] }, unsent: [] });
  });

  it('split, first half failed: the second half never went out', () => {
    const report = account(batch, [req(batch, tooLarge), req(['a', 'b'], down)], undefined);
    expect(report).toMatchObject({ accepted: [], failed: { verdict: down, uuids: ['a', 'b'] }, unsent: ['c', 'd'] });
  });

  it('no request at all (posthog-node threw before sending): a target failure for every event, nothing accepted', () => {
    const report = account(batch, [], new Error('boom'));
    expect(report.accepted).toEqual([]);
    expect(report.failed?.uuids).toEqual(batch);
    expect(report.failed?.verdict).toMatchObject({ kind: 'target', message: expect.stringMatching(/posthog-node failed before sending: .*boom/) });
  });

  it('events left out of an accepted request: never counted as delivered', () => {
    const report = account(batch, [req(['a', 'b', 'c'], ok)], undefined);
    expect(report.accepted).toEqual(['a', 'b', 'c']);
    expect(report.failed).toMatchObject({ uuids: ['d'], verdict: { kind: 'target', message: 'posthog-node did not send 1 event(s) of the batch' } });
  });

  it('a request whose body could not be read: its failure covers the batch', () => {
    const unreadable: Verdict = { kind: 'target', message: 'could not read' };
    expect(account(batch, [req([], unreadable)], undefined)).toMatchObject({ accepted: [], failed: { verdict: unreadable, uuids: batch }, unsent: [] });
  });
});

describe('Capture V1: a verdict per event', () => {
  it.each<[string, unknown, number | undefined, EventVerdict]>([
    ['ok', { result: 'ok' }, undefined, { kind: 'ok' }],
    ['ok with details (ignored)', { result: 'ok', details: 'x' }, undefined, { kind: 'ok' }],
    [
      'warning with details',
      { result: 'warning', details: 'person_processing_disabled' },
      undefined,
      { kind: 'warning', details: 'person_processing_disabled' },
    ],
    ['warning without details', { result: 'warning' }, undefined, { kind: 'warning', details: 'no details' }],
    ['drop with details', { result: 'drop', details: 'billing_limit_exceeded' }, undefined, { kind: 'drop', details: 'billing_limit_exceeded' }],
    ['drop, details null', { result: 'drop', details: null }, undefined, { kind: 'drop', details: 'no details' }],
    [
      'retry with the answer’s Retry-After',
      { result: 'retry', details: 'not_persisted' },
      1_000,
      { kind: 'retry', details: 'not_persisted', retryAfterMs: 1_000 },
    ],
    ['retry without Retry-After', { result: 'retry' }, undefined, { kind: 'retry', details: 'no details' }],
  ])('%s', (_name, entry, retryAfterMs, expected) => {
    expect(eventVerdict(entry, retryAfterMs)).toEqual(expected);
  });

  it.each<[string, unknown, RegExp]>([
    ['no verdict for the event', undefined, /had no verdict for the event/],
    ['a result this worker does not know', { result: 'duplicate' }, /does not know: \{"result":"duplicate"\}/],
    ['a result that is not a string', { result: 1 }, /does not know/],
    ['null', null, /does not know/],
  ])('%s: unanswered, never taken for acceptance', (_name, entry, message) => {
    const verdict = eventVerdict(entry);
    expect(verdict.kind).toBe('unanswered');
    expect((verdict as { message: string }).message).toMatch(message);
  });

  it.each<[string, EventVerdict, ReturnType<typeof decideEvent>]>([
    ['ok: delivered', { kind: 'ok' }, { action: 'delivered' }],
    [
      'warning: delivered, the warning kept',
      { kind: 'warning', details: 'person_processing_disabled' },
      { action: 'delivered', warning: 'person_processing_disabled' },
    ],
    [
      'drop: dead-lettered with PostHog’s details',
      { kind: 'drop', details: 'billing_limit_exceeded' },
      { action: 'deadLetter', reason: 'PostHog dropped the event (Capture V1 verdict drop: billing_limit_exceeded): it will not ingest it' },
    ],
    [
      'retry: that event alone again, Retry-After a floor',
      { kind: 'retry', details: 'not_persisted', retryAfterMs: 1_000 },
      { action: 'retryEvent', error: 'PostHog asked for the event again later (Capture V1 verdict retry: not_persisted)', retryAfterMs: 1_000 },
    ],
    [
      'unanswered: a target failure, kept',
      { kind: 'unanswered', message: 'no verdict' },
      { action: 'retry', error: 'no verdict: kept and retried (not counted as delivered)' },
    ],
  ])('decideEvent %s', (_name, verdict, decision) => {
    expect(decideEvent(verdict)).toEqual(decision);
  });

  const A = '0190aaaa-0000-7000-8000-00000000000a';
  const B = '0190aaaa-0000-7000-8000-00000000000b';
  const json = (results: unknown) => JSON.stringify({ results });
  const answer = (status: number, body: string, retryAfterMs?: number): Answer => ({
    status,
    body,
    contentType: 'application/json',
    ...(retryAfterMs ? { retryAfterMs } : {}),
  });
  it.each<[string, Answer, Verdict['kind'], (EventVerdict['kind'] | undefined)[] | undefined, RegExp?]>([
    ['all ok', answer(200, json({ [A]: { result: 'ok' }, [B]: { result: 'ok' } })), 'accepted', ['ok', 'ok']],
    ['looked up in PostHog’s lower case', answer(200, json({ [A]: { result: 'ok' }, [B]: { result: 'drop' } })), 'accepted', ['ok', 'drop']],
    ['a mix', answer(200, json({ [A]: { result: 'warning', details: 'w' }, [B]: { result: 'retry' } }), 1_000), 'accepted', ['warning', 'retry']],
    ['one without a verdict', answer(200, json({ [A]: { result: 'ok' } })), 'accepted', ['ok', 'unanswered']],
    [
      'every event retry: PostHog not ingesting now',
      answer(200, json({ [A]: { result: 'retry' }, [B]: { result: 'retry' } }), 1_000),
      'target',
      undefined,
      /retry for every event/,
    ],
    ['no verdict for any event', answer(200, json({})), 'target', undefined, /no verdict for any event.*check POSTHOG_HOST/],
    ['v0’s acceptance on the V1 path', answer(200, '{"status":1}'), 'target', undefined, /without Capture V1's answer/],
    ['a web page', answer(200, '<html>hi</html>'), 'target', undefined, /without Capture V1's answer/],
    ['results not an object', answer(200, '{"results":[]}'), 'target', undefined, /without Capture V1's answer/],
    ['a 204', answer(204, ''), 'target', undefined, /HTTP 204/],
    ['a 400 for the request (duplicate uuid): rejected, bisected as on v0', answer(400, '{"error":"duplicate_event_uuid"}'), 'rejected', undefined],
    ['a 413', answer(413, ''), 'rejected', undefined],
    [
      '429 over quota (billing_limit_exceeded): a target failure, not a drop',
      answer(429, '{"error":"billing_limit_exceeded"}', 1_000),
      'target',
      undefined,
      /HTTP 429/,
    ],
    ['503', answer(503, ''), 'target', undefined, /HTTP 503/],
  ])('classifyV1Answer: %s', (_name, given, kind, events, message) => {
    const reading = classifyV1Answer(given, [A.toUpperCase(), B]);
    expect(reading.verdict.kind).toBe(kind);
    expect(reading.events?.map((e) => e.kind)).toEqual(events);
    if (message) expect((reading.verdict as { message: string }).message).toMatch(message);
  });

  it('a retry event carries the answer’s Retry-After; an every-retry target failure too', () => {
    const mixed = classifyV1Answer(answer(200, json({ [A]: { result: 'ok' }, [B]: { result: 'retry', details: 'not_persisted' } }), 1_000), [A, B]);
    expect(mixed.events?.[1]).toEqual({ kind: 'retry', details: 'not_persisted', retryAfterMs: 1_000 });
    const all = classifyV1Answer(answer(200, json({ [A]: { result: 'retry' } }), 1_000), [A]);
    expect(all.verdict).toMatchObject({ kind: 'target', status: 200, retryAfterMs: 1_000 });
  });
});

describe('accountV1: what became of each event of a batch sent through Capture V1', () => {
  const request = (uuids: string[], verdict: Verdict, events?: EventVerdict[]): WireRequest => ({ uuids, verdict, ...(events ? { events } : {}), seconds: 0 });
  const batch = ['a', 'b', 'c', 'd', 'e'];

  it('each event by its verdict: ok and warning accepted, the others answered, nothing failed or unsent', () => {
    const report = accountV1(
      batch,
      [
        request(batch, { kind: 'accepted' }, [
          { kind: 'ok' },
          { kind: 'warning', details: 'w' },
          { kind: 'drop', details: 'd' },
          { kind: 'retry', details: 'r' },
          { kind: 'unanswered', message: 'none' },
        ]),
      ],
      undefined,
    );
    expect(report.accepted).toEqual(['a', 'b']);
    expect(report.answered?.map((x) => [x.uuid, x.verdict.kind])).toEqual([
      ['b', 'warning'],
      ['c', 'drop'],
      ['d', 'retry'],
      ['e', 'unanswered'],
    ]);
    expect(report.failed).toBeUndefined();
    expect(report.unsent).toEqual([]);
  });

  it('a request that failed as a whole (503, timeout): every event failed with its verdict, none answered', () => {
    const verdict: Verdict = { kind: 'target', status: 503, message: 'PostHog answered HTTP 503' };
    const report = accountV1(batch, [request(batch, verdict)], undefined);
    expect(report).toMatchObject({ accepted: [], failed: { verdict, uuids: batch }, unsent: [] });
    expect(report.answered).toBeUndefined();
  });

  it('no request (posthog-node never sent): a target failure for every event', () => {
    const report = accountV1(batch, [], undefined);
    expect(report.failed).toMatchObject({ verdict: { kind: 'target', message: 'posthog-node did not send 5 event(s) of the batch' }, uuids: batch });
  });

  it('stopped on purpose before the request: unsent, no failure', () => {
    expect(accountV1(batch, [], STOPPED)).toEqual({ requests: [], accepted: [], unsent: batch });
  });

  it('events the request did not carry: never accepted, failed as the target’s', () => {
    const report = accountV1(batch, [request(['a', 'b'], { kind: 'accepted' }, [{ kind: 'ok' }, { kind: 'ok' }])], undefined);
    expect(report.accepted).toEqual(['a', 'b']);
    expect(report.failed?.uuids).toEqual(['c', 'd', 'e']);
  });
});

describe('identifyEvents', () => {
  const t = (iso: string) => new Date(iso);
  it('builds $identify / $groupidentify for what the memory decided, tagged with entity and version; none with nothing to set', () => {
    const items = identifyEvents(
      [
        { kind: 'user', id: 'u1', fields: { email: 'new@x.io' }, version: 3 },
        { kind: 'user', id: 'u2', fields: {}, version: 1 },
        { kind: 'automation', id: 'a1', fields: { name: 'Nightly' }, version: 1 },
        { kind: 'organization', id: 'o1', fields: { name: 'Acme' }, version: 2 },
      ],
      t('2026-01-01T00:01:00Z'),
    );
    expect(items.map(({ event, identity }) => [event.event, event.distinctId, event.properties, identity.version])).toEqual([
      ['$identify', 'u1', { $set: { email: 'new@x.io' } }, 3],
      ['$identify', 'automation_a1', { $set: { name: 'Nightly' } }, 1],
      ['$groupidentify', '$organization_o1', { $group_type: 'organization', $group_key: 'o1', $group_set: { name: 'Acme' } }, 2],
    ]);
    for (const { event } of items) expect(event.profiles).toEqual({});
  });

  it('keeps a group-identify distinct id within PostHog’s 200 characters', () => {
    const [item] = identifyEvents([{ kind: 'organization', id: 'o'.repeat(200), fields: { name: 'Long' }, version: 1 }]);
    expect(item!.event.distinctId.length).toBeLessThanOrEqual(200);
    expect(item!.event.properties.$group_key).toBe('o'.repeat(200));
  });
});

describe('nextPollDelay: the idle probe', () => {
  it.each([
    ['work found: back to the minimum', 500, true, 20],
    ['nothing found: a little longer', 20, false, 30],
    ['nothing found again', 30, false, 45],
    ['capped at the maximum', 400, false, 500],
    ['stays at the maximum while idle', 500, false, 500],
  ])('%s', (_name, previous, found, expected) => {
    expect(nextPollDelay(previous, found, DEFAULT_POLL)).toBe(expected);
  });
});
