/**
 * What PostHog's answers mean for the rows that were sent: pure decisions, tested as tables.
 *
 * The delivery promise rests on two rules:
 * - Only PostHog's capture answer proves acceptance: a 200 whose JSON body carries capture's status
 *   (`{"status": 1}` from the classic capture endpoint, `{"status": "Ok"}` from the current one, with an
 *   optional `quota_limited` list). Anything else, 2xx included, is not proof: a redirect (never followed),
 *   a web page, an empty 204, a proxy's own answer.
 * - Only an event-specific, permanent rejection dead-letters an event: a 400/413/422 that bisection pins on
 *   that event alone twice, with PostHog accepting other events in between. Every failure of the
 *   target itself (5xx, 408, 429, timeouts, connection errors, 401/403/404, redirects, non-PostHog answers,
 *   or rejecting every event it is sent) is retried with capped backoff for as long as it lasts.
 *
 * Capture V1 (`posthog.captureMode: 'v1'`) answers a request it takes with a verdict per event
 * (`classifyV1Answer`, `decideEvent`): `ok` and `warning` are acceptance of that event, `drop` is PostHog's word
 * that it will never ingest it (dead-lettered at once, with PostHog's details), `retry` asks for that event
 * again later. An event PostHog gave a verdict for is never sent again unless the verdict was `retry`. The
 * request-level rules above still hold for everything but a 200.
 */

/** How PostHog answered one request. */
export type Verdict =
  | { kind: 'accepted' }
  /** 400 / 413 / 422: the request was refused for its content (one bad event refuses the whole request). */
  | { kind: 'rejected'; status: number; message: string }
  /** The target failed: nothing is said about the events. `retryAfterMs` from a Retry-After header. */
  | { kind: 'target'; status?: number; retryAfterMs?: number; message: string };

const CONTENT_REJECTIONS = new Set([400, 413, 422]);
const BODY_LIMIT = 300;

/** The answer of an HTTP exchange, as read off the wire. */
export interface Answer {
  status: number;
  /** The Content-Type header, if any. */
  contentType?: string | null;
  /** The Location header of a redirect, if any. */
  location?: string | null;
  /** The Retry-After, already parsed to milliseconds. */
  retryAfterMs?: number;
  /** The response body as text (may be cut short). */
  body: string;
}

function excerpt(body: string): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > BODY_LIMIT ? `${flat.slice(0, BODY_LIMIT)}…` : flat;
}

/** `body` parsed, when it is a JSON object; undefined for anything else. */
function jsonObject(body: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
}

/** True when `body` is PostHog capture's answer to an accepted request. */
export function isCaptureAcceptance(body: string): boolean {
  const parsed = jsonObject(body);
  if (parsed === undefined) return false;
  const { status, quota_limited: quotaLimited, ...rest } = parsed;
  if (status !== 1 && status !== 'Ok') return false;
  if (quotaLimited !== undefined && !(Array.isArray(quotaLimited) && quotaLimited.every((q) => typeof q === 'string'))) return false;
  return Object.keys(rest).length === 0;
}

/** What one HTTP answer to a batch request means. */
export function classifyAnswer(answer: Answer): Verdict {
  const { status, body } = answer;
  const said = body.trim() ? `: ${excerpt(body)}` : '';
  if (status === 200 && isCaptureAcceptance(body)) return { kind: 'accepted' };
  if (status >= 200 && status < 300) {
    const type = answer.contentType ? ` (${answer.contentType.split(';')[0]})` : '';
    return {
      kind: 'target',
      status,
      message: `the host answered HTTP ${status}${type} without PostHog's capture answer${said}; it does not look like PostHog's capture endpoint: check POSTHOG_HOST`,
    };
  }
  if (status >= 300 && status < 400) {
    return {
      kind: 'target',
      status,
      message: `the host answered HTTP ${status}, a redirect to ${answer.location ? JSON.stringify(answer.location) : 'nowhere (no Location)'} (redirects are not followed: a redirected POST loses its body); set POSTHOG_HOST to PostHog's own address`,
    };
  }
  if (CONTENT_REJECTIONS.has(status)) return { kind: 'rejected', status, message: `PostHog answered HTTP ${status}${said}` };
  const hint = status === 401 || status === 403 ? ' (check POSTHOG_API_KEY)' : status === 404 || status === 405 ? ' (check POSTHOG_HOST)' : '';
  return {
    kind: 'target',
    status,
    ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
    message: `PostHog answered HTTP ${status}${hint}${said}`,
  };
}

/** What to do next with the events of a request, given its verdict. */
export type Decision =
  | { action: 'delivered' }
  /** A rejected request of several events: split it in two and send each half. */
  | { action: 'bisect' }
  /** A rejected request of one event: the rejection is pinned on it (see `judgePinned`). */
  | { action: 'pinned'; reason: string }
  | { action: 'retry'; error: string; retryAfterMs?: number };

export function decide(verdict: Verdict, events: number): Decision {
  switch (verdict.kind) {
    case 'accepted':
      return { action: 'delivered' };
    case 'rejected':
      return events > 1 ? { action: 'bisect' } : { action: 'pinned', reason: verdict.message };
    case 'target':
      return { action: 'retry', error: verdict.message, ...(verdict.retryAfterMs !== undefined ? { retryAfterMs: verdict.retryAfterMs } : {}) };
  }
}

// --- the circuit breaker for systemic rejection ----------------------------------------------------------

/** The largest share of a batch that may be dead-lettered as poison; more is a target that rejects broadly. */
export const MAX_POISON_SHARE = 0.1;

/** How many events of a batch of `size` may be pinned as poison before the rejection counts as systemic. */
export function poisonAllowance(size: number): number {
  return Math.max(1, Math.floor(size * MAX_POISON_SHARE));
}

/**
 * While bisecting a batch of `size` events: stop and call it systemic when this many requests have been
 * rejected and PostHog has accepted none of the batch's events. Finding one poison event costs
 * ceil(log2 size) + 1 rejected requests, a second one beside it two more; beyond that with nothing
 * accepted, the target rejects everything (a proxy mangling bodies, an API change), and bisecting on would
 * cost two requests per event of the backlog.
 */
export function bisectionBudget(size: number): number {
  return Math.ceil(Math.log2(Math.max(1, size))) + 3;
}

export interface BisectionState {
  /** Events of the batch PostHog has accepted so far. */
  accepted: number;
  /** Requests of the batch PostHog rejected for their content so far. */
  rejectedRequests: number;
  /** Events the rejections were pinned on so far. */
  pinned: number;
}

/** True when the bisection of a batch of `size` should stop: what it sees is a target rejecting broadly. */
export function rejectsBroadly(size: number, state: BisectionState): boolean {
  if (state.pinned > poisonAllowance(size)) return true;
  return state.accepted === 0 && state.rejectedRequests >= bisectionBudget(size);
}

/**
 * Whether an event the rejection was pinned on is confirmed poison (dead-lettered) or not yet (kept with its
 * rejection time, retried after a backoff).
 *
 * Confirmed when it is rejected alone a second time and PostHog has accepted other events since the first
 * rejection: the target worked in between, so the event is at fault. One rejection is never enough, even
 * with other events of its batch accepted: a systemic rejection (a proxy, an API change) that ends while a
 * batch is being bisected would otherwise dead-letter the events pinned before it ended. Never while the
 * batch looks like a target rejecting broadly (`broad`).
 */
export function judgePinned(input: {
  /** Whether the batch was judged systemic (`rejectsBroadly` on its final state, or bisection stopped by it). */
  broad: boolean;
  /** When this event was last rejected alone without confirmation (null: never). */
  rejectedAt: Date | null;
  /** When this worker last had a request accepted (null: not since it started). */
  lastAcceptedAt: Date | null;
}): 'poison' | 'unconfirmed' {
  const { broad, rejectedAt, lastAcceptedAt } = input;
  if (broad) return 'unconfirmed';
  if (rejectedAt !== null && lastAcceptedAt !== null && lastAcceptedAt.getTime() > rejectedAt.getTime()) return 'poison';
  return 'unconfirmed';
}

// --- Capture V1: a verdict per event ---------------------------------------------------------------------

/** PostHog's verdict on one event of a Capture V1 request it answered 200 for. */
export type EventVerdict =
  | { kind: 'ok' }
  /** Accepted, with a note (`person_processing_disabled`...). */
  | { kind: 'warning'; details: string }
  /** PostHog will never ingest it (invalid, `billing_limit_exceeded`...). */
  | { kind: 'drop'; details: string }
  /** Not ingested now: send it again later (`not_persisted`...). `retryAfterMs` from the answer's Retry-After. */
  | { kind: 'retry'; details: string; retryAfterMs?: number }
  /**
   * No verdict this worker can act on: none for the event, or a result it does not know. PostHog's capture
   * gives one of the four to every event of the batch, so this is not PostHog's answer for the event.
   */
  | { kind: 'unanswered'; message: string };

const V1_RESULTS = new Set(['ok', 'warning', 'drop', 'retry']);

/** One entry of a V1 answer's `results` (undefined: none for the event), as a verdict. */
export function eventVerdict(entry: unknown, retryAfterMs?: number): EventVerdict {
  if (entry === undefined) return { kind: 'unanswered', message: "PostHog's Capture V1 answer had no verdict for the event" };
  const { result, details } = (entry ?? {}) as { result?: unknown; details?: unknown };
  const said = typeof details === 'string' && details !== '' ? details : 'no details';
  if (typeof result !== 'string' || !V1_RESULTS.has(result)) {
    return {
      kind: 'unanswered',
      message: `PostHog's Capture V1 answer had a verdict for the event this worker does not know: ${excerpt(JSON.stringify(entry) ?? '')}`,
    };
  }
  if (result === 'ok') return { kind: 'ok' };
  if (result === 'retry') return { kind: 'retry', details: said, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  return { kind: result as 'warning' | 'drop', details: said };
}

/** The `results` object of a Capture V1 answer, or undefined when `body` is not one. */
function v1Results(body: string): Record<string, unknown> | undefined {
  const results = jsonObject(body)?.results;
  if (results === null || typeof results !== 'object' || Array.isArray(results)) return undefined;
  return results as Record<string, unknown>;
}

/** What a Capture V1 answer means: the request's verdict and, when PostHog took the request, each event's (in `uuids` order). */
export interface V1Reading {
  verdict: Verdict;
  /** Set with `verdict` accepted: the verdict on each event of the request, in the order of its `uuids`. */
  events?: EventVerdict[];
}

/**
 * What one HTTP answer to a Capture V1 request carrying `uuids` means. Anything but a 200 is read as on v0
 * (`classifyAnswer`: 400/413/422 rejected for its content, the rest a target failure). A 200 is PostHog's
 * only when its body is `{"results": {...}}` with a verdict for at least one of the request's events (looked up
 * by uuid, in PostHog's lower case); then each event has its own verdict. A 200 whose every event is `retry`
 * is a target failure: PostHog is not ingesting now (its Kafka down...), which pauses the worker like a 503.
 */
export function classifyV1Answer(answer: Answer, uuids: readonly string[]): V1Reading {
  if (answer.status !== 200) return { verdict: classifyAnswer(answer) };
  const results = v1Results(answer.body);
  const said = answer.body.trim() ? `: ${excerpt(answer.body)}` : '';
  const notPostHog = (what: string): V1Reading => ({
    verdict: {
      kind: 'target',
      status: 200,
      message: `the host answered HTTP 200 ${what}${said}; it does not look like PostHog's Capture V1 endpoint: check POSTHOG_HOST`,
    },
  });
  if (!results) return notPostHog('without Capture V1\'s answer ({"results": ...})');
  const events = uuids.map((uuid) => eventVerdict(results[uuid.toLowerCase()] ?? results[uuid], answer.retryAfterMs));
  if (events.length > 0 && events.every((e) => e.kind === 'unanswered')) return notPostHog('with no verdict for any event of the request');
  if (events.length > 0 && events.every((e) => e.kind === 'retry')) {
    const details = [...new Set(events.map((e) => (e as { details: string }).details))].join(', ');
    return {
      verdict: {
        kind: 'target',
        status: 200,
        ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
        message: `PostHog answered retry for every event of the request (${details}): it is not ingesting now`,
      },
    };
  }
  return { verdict: { kind: 'accepted' }, events };
}

/** What to do with one event of a request PostHog took, given its verdict. */
export type EventDecision =
  /** Delivered; `warning`: PostHog's note, to be kept visible. */
  | { action: 'delivered'; warning?: string }
  /** Dead-lettered now, with PostHog's reason: it will never ingest the event. */
  | { action: 'deadLetter'; reason: string }
  /** That event alone scheduled again after its backoff (at least `retryAfterMs`); the pass goes on. */
  | { action: 'retryEvent'; error: string; retryAfterMs?: number }
  /** Not answered: retried after a backoff like a target failure (the worker pauses), never counted delivered. */
  | { action: 'retry'; error: string };

export function decideEvent(verdict: EventVerdict): EventDecision {
  switch (verdict.kind) {
    case 'ok':
      return { action: 'delivered' };
    case 'warning':
      return { action: 'delivered', warning: verdict.details };
    case 'drop':
      return { action: 'deadLetter', reason: `PostHog dropped the event (Capture V1 verdict drop: ${verdict.details}): it will not ingest it` };
    case 'retry':
      return {
        action: 'retryEvent',
        error: `PostHog asked for the event again later (Capture V1 verdict retry: ${verdict.details})`,
        ...(verdict.retryAfterMs !== undefined ? { retryAfterMs: verdict.retryAfterMs } : {}),
      };
    case 'unanswered':
      return { action: 'retry', error: `${verdict.message}: kept and retried (not counted as delivered)` };
  }
}
