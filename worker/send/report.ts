/**
 * What became of a batch's events, from the requests posthog-node made for it (worker/send/sender.ts notes each
 * request and how PostHog answered it): the pure accounting, for Capture v0 (`account`: one answer per
 * request) and Capture V1 (`accountV1`: a verdict per event). A row counts as delivered only when PostHog
 * said so of its event; whether posthog-node thinks it succeeded is not evidence of anything.
 */
import type { EventVerdict, Verdict } from './outcome.ts';

/** Passed to `account` when the batch was stopped on purpose (`SendOptions.stop`). */
export const STOPPED: unique symbol = Symbol('stopped');

/** One HTTP request posthog-node made for the batch. */
export interface WireRequest {
  /** The uuids of the events in its body, in body order (empty if the body could not be read). */
  uuids: string[];
  verdict: Verdict;
  /** Capture V1, with `verdict` accepted: PostHog's verdict on each event of the request, in the order of `uuids`. */
  events?: EventVerdict[];
  /** How long it took, in seconds. */
  seconds: number;
}

export type Failure = Exclude<Verdict, { kind: 'accepted' }>;

/** A Capture V1 verdict other than `ok` on one event. */
export interface EventAnswer {
  uuid: string;
  verdict: Exclude<EventVerdict, { kind: 'ok' }>;
}

/**
 * What became of a batch. Every uuid of the batch is in exactly one of `accepted`, `failed`, `unsent` and
 * (Capture V1) `answered` with a verdict other than `warning`; a `warning` is also in `accepted`.
 */
export interface SendReport {
  requests: WireRequest[];
  /** Events that were in a request PostHog accepted (on V1: whose verdict was `ok` or `warning`). */
  accepted: string[];
  /** Capture V1: the events PostHog gave a verdict other than `ok` (warnings, drops, retries, none it can act on). */
  answered?: EventAnswer[];
  /** The request posthog-node stopped at (not accepted), with its events that were not accepted elsewhere. */
  failed?: { verdict: Failure; uuids: string[] };
  /** Events that went out in no accepted request and not in the failed one. */
  unsent: string[];
}

export function describeNetworkError(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } } | undefined;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return `no answer from PostHog: ${e.message ?? 'request aborted'}`;
  const detail = [e?.name, e?.code ?? e?.cause?.code, e?.cause?.message ?? e?.message].filter(Boolean).join(' ');
  return `network error talking to PostHog: ${detail || String(error)}`;
}

/**
 * The pure accounting: from the requests made for a batch (in order), which events were accepted, which
 * were in the failed request posthog-node stopped at, and which never went out. posthog-node sends one
 * request at a time and stops at the first failure other than a 413 it splits and re-sends, so a failure
 * is only final when it is the last request.
 */
export function account(batch: readonly string[], requests: readonly WireRequest[], sdkError: unknown): SendReport {
  const only = requests.length === 1 ? requests[0]! : undefined;
  if (only?.verdict.kind === 'accepted' && only.uuids.length === batch.length && only.uuids.every((uuid, i) => uuid === batch[i])) {
    // One request, accepted, with every event of the batch in its body (the common case).
    return { requests: [only], accepted: [...batch], unsent: [] };
  }
  if (sdkError === STOPPED && requests.at(-1)?.verdict.kind !== 'target') {
    // Stopped on purpose before a request: what was not accepted is simply unsent.
    const accepted = new Set(requests.flatMap((r) => (r.verdict.kind === 'accepted' ? r.uuids : [])));
    return { requests: [...requests], accepted: batch.filter((u) => accepted.has(u)), unsent: batch.filter((u) => !accepted.has(u)) };
  }
  const acceptedSet = new Set<string>();
  for (const r of requests) if (r.verdict.kind === 'accepted') for (const uuid of r.uuids) acceptedSet.add(uuid);
  const accepted = batch.filter((u) => acceptedSet.has(u));
  const last = requests.at(-1);
  let failed: SendReport['failed'];
  if (last && last.verdict.kind !== 'accepted') {
    failed = { verdict: last.verdict, uuids: last.uuids.filter((u) => !acceptedSet.has(u)) };
  }
  const inFailed = new Set(failed?.uuids ?? []);
  let unsent = batch.filter((u) => !acceptedSet.has(u) && !inFailed.has(u));
  if (unsent.length > 0 && (!failed || failed.uuids.length === 0)) {
    // Events that went nowhere with no failed request of theirs: posthog-node threw before sending, dropped
    // them, or built a request that could not be read. Not the events' fault, but nothing may pass as sent.
    failed = { verdict: failed?.verdict ?? unsentFailure(unsent.length, sdkError), uuids: unsent };
    unsent = [];
  }
  return { requests: [...requests], accepted, ...(failed ? { failed } : {}), unsent };
}

/** When events went nowhere with no failed request of theirs: not the events' fault, but nothing may pass as sent. */
function unsentFailure(count: number, sdkError: unknown): Failure {
  return {
    kind: 'target',
    message:
      sdkError === undefined
        ? `posthog-node did not send ${count} event(s) of the batch`
        : `posthog-node failed before sending: ${describeNetworkError(sdkError)}`,
  };
}

/**
 * The accounting of a batch sent through Capture V1. posthog-node's V1 sender makes one request per batch (its
 * own retries are off: `fetchRetryCount: 0` is one attempt, so it never re-sends an event, `retry` or not),
 * never splits it, and never rejects `flush()`: only the requests seen on the wire say anything. Each event of a
 * request PostHog took has its own verdict; the events of a request that failed as a whole (a 5xx, 429, timeout,
 * lost connection, a 400 for the request) are `failed` with that request's verdict, as on v0.
 */
export function accountV1(batch: readonly string[], requests: readonly WireRequest[], sdkError: unknown): SendReport {
  const verdicts = new Map<string, EventVerdict>();
  let failedRequest: WireRequest | undefined;
  for (const r of requests) {
    if (r.verdict.kind === 'accepted' && r.events) {
      for (const [i, uuid] of r.uuids.entries()) verdicts.set(uuid, r.events[i]!);
    } else if (r.verdict.kind !== 'accepted') {
      failedRequest = r;
    }
  }
  const accepted: string[] = [];
  const answered: EventAnswer[] = [];
  for (const uuid of batch) {
    const verdict = verdicts.get(uuid);
    if (verdict === undefined) continue;
    if (verdict.kind === 'ok' || verdict.kind === 'warning') accepted.push(uuid);
    if (verdict.kind !== 'ok') answered.push({ uuid, verdict });
  }
  let failed: SendReport['failed'];
  if (failedRequest) {
    failed = { verdict: failedRequest.verdict as Failure, uuids: failedRequest.uuids.filter((u) => !verdicts.has(u)) };
  }
  const inFailed = new Set(failed?.uuids ?? []);
  let unsent = batch.filter((u) => !verdicts.has(u) && !inFailed.has(u));
  const stopped = sdkError === STOPPED && requests.at(-1)?.verdict.kind !== 'target';
  if (unsent.length > 0 && !stopped && (!failed || failed.uuids.length === 0)) {
    failed = { verdict: failed?.verdict ?? unsentFailure(unsent.length, sdkError), uuids: unsent };
    unsent = [];
  }
  return { requests: [...requests], accepted, ...(answered.length > 0 ? { answered } : {}), ...(failed ? { failed } : {}), unsent };
}

/** Capture V1: a batch's warnings (`[uuid, PostHog's details]`) as one line and a count per detail. */
export function summarizeWarnings(warnings: readonly (readonly [string, string])[]): { summary: string; details: Record<string, number> } {
  const details: Record<string, number> = {};
  for (const [, said] of warnings) details[said] = (details[said] ?? 0) + 1;
  const list = Object.entries(details)
    .map(([said, n]) => `${said} (${n})`)
    .join(', ');
  return { summary: `PostHog accepted ${warnings.length} event(s) of a batch with a warning (Capture V1): ${list}`, details };
}
