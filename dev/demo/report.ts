/**
 * The demo's report: what PostHog received (the local capture server), or, when the events went to a
 * PostHog project of the user's, what the demo committed. test/demo.test.ts reads these lines.
 */
import { CATALOGUE_EVENTS } from '../../src/index.ts';
import type { CaptureServer, ReceivedEvent } from '../capture-server.ts';
import { DEMO_PLAN } from './plan.ts';
import { elapsed, out, say, table } from './print.ts';
import { reportLlmAnalytics } from './report-llm.ts';
import type { TrafficResult } from './traffic.ts';

/** Events by name: the catalogue first, then LLM analytics', the application's, and the worker's identifies. */
function eventOrder(names: Iterable<string>): string[] {
  const catalogue = CATALOGUE_EVENTS as readonly string[];
  const rank = (name: string) => (catalogue.includes(name) ? catalogue.indexOf(name) : name.startsWith('$ai_') ? 50 : name.startsWith('$') ? 1000 : 100);
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

function breakdown(counts: Map<string, number>): string {
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k} ${n}`)
    .join(' · ');
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function reportReceived(capture: CaptureServer, traffic: TrafficResult): void {
  // One entry per uuid (a resend is a duplicate PostHog drops).
  const firsts: ReceivedEvent[] = [...capture.byUuid().values()].map((copies) => copies[0]!);
  const ofEvent = (name: string) => firsts.filter((e) => e.event === name);
  receivedByEvent(firsts, capture.events.length - firsts.length, traffic);
  runEndings(ofEvent);
  out();
  reportLlmAnalytics(firsts);
  out();
  identified(firsts, ofEvent);
  out();
  secretsAndRollbacks(firsts, ofEvent, traffic);
  latency(firsts, traffic);
}

function receivedByEvent(firsts: ReceivedEvent[], duplicates: number, traffic: TrafficResult): void {
  const received = countBy(firsts, (e) => e.event);
  const sent = countBy(traffic.committed, (c) => c.event);
  out('What PostHog received (the local capture server), by event:');
  const rows = eventOrder([...sent.keys(), ...received.keys()]).map((name) => [
    name,
    // the worker's identifies are not committed by the traffic
    name.startsWith('$') && !sent.has(name) ? '-' : String(sent.get(name) ?? 0),
    String(received.get(name) ?? 0),
  ]);
  rows.push(['total', String(traffic.committed.length), String(firsts.length)]);
  process.stdout.write(table(['event', 'committed', 'received'], rows));
  if (duplicates > 0) out(`(${duplicates} resent copies with an already received uuid; PostHog drops them)`);
  out();
}

function runEndings(ofEvent: (name: string) => ReceivedEvent[]): void {
  const started = ofEvent('chat_message_started').length;
  const ended = ofEvent('chat_message_completed').length + ofEvent('chat_message_aborted').length + ofEvent('chat_message_failed').length;
  say('abort_reason', breakdown(countBy(ofEvent('chat_message_aborted'), (e) => String(e.properties.abort_reason))));
  say('error_category', breakdown(countBy(ofEvent('chat_message_failed'), (e) => String(e.properties.error_category))));
  out(`runs without a server end event: ${started - ended} (a person's own stop button; their client sends chat_message_stopped)`);
}

/** Who was identified (users, automation personas, organizations), and who has no profile to identify. */
function identified(firsts: ReceivedEvent[], ofEvent: (name: string) => ReceivedEvent[]): void {
  const persons = [...new Set(ofEvent('$identify').map((e) => e.distinct_id))].sort();
  const users = persons.filter((id) => !id.startsWith('automation_'));
  const personas = persons.filter((id) => id.startsWith('automation_'));
  const orgs = [...new Set(ofEvent('$groupidentify').map((e) => String(e.properties.$group_key)))].sort();
  const attributed = firsts.filter((e) => !e.event.startsWith('$') || e.event.startsWith('$ai_'));
  const seenUsers = new Set(attributed.map((e) => String(e.properties.user_id)));
  const seenOrgs = new Set(attributed.map((e) => String(e.properties.organization_id)));
  const legacyUsers = [...seenUsers].filter((id) => !users.includes(id)).sort();
  const legacyOrgs = [...seenOrgs].filter((id) => !orgs.includes(id)).sort();
  const row = (label: string, ids: string[]) => [label, String(ids.length), ids.join(', ') || '-'];
  const who = [
    row('identified users', users),
    row('identified automation personas', personas),
    row('group-identified organizations', orgs),
    row('users without a profile', legacyUsers),
    row('organizations without a profile', legacyOrgs),
  ];
  process.stdout.write(table(['who', 'count', 'ids'], who));
  const identifies = ofEvent('$identify').length;
  const groupIdentifies = ofEvent('$groupidentify').length;
  out(
    `(${identifies} $identify and ${groupIdentifies} $groupidentify, ${((identifies + groupIdentifies) / Math.max(1, attributed.length)).toFixed(2)} per delivered event: ` +
      'when an entity is first seen, when a profile field changes, and after the refresh interval; ' +
      'entities with no known profile field get none: legacy accounts, see backfill-profiles)',
  );
}

function secretsAndRollbacks(firsts: ReceivedEvent[], ofEvent: (name: string) => ReceivedEvent[], traffic: TrafficResult): void {
  const wire = JSON.stringify(firsts);
  const leaked = DEMO_PLAN.secrets.filter((secret) => wire.includes(secret));
  const example = ofEvent('chat_message_failed')
    .map((e) => String(e.properties.error_message))
    .find((m) => m.includes('[redacted]'));
  say('secrets', `${DEMO_PLAN.secrets.length} in failure messages, ${leaked.length} reached PostHog${example ? `; e.g. error_message "${example}"` : ''}`);
  const receivedUuids = new Set(firsts.map((e) => e.uuid));
  const rolledBackArrived = traffic.rolledBack.filter((uuid) => receivedUuids.has(uuid)).length;
  say('rollback', `${traffic.rolledBack.length} event(s) recorded in transactions that rolled back, ${rolledBackArrived} reached PostHog`);
}

function latency(firsts: ReceivedEvent[], traffic: TrafficResult): void {
  const committedAt = new Map(traffic.committed.map((c) => [c.uuid, c.committedAt]));
  const latencies = firsts
    .filter((e) => committedAt.has(String(e.uuid)))
    .map((e) => Math.max(0, e.receivedAt - committedAt.get(String(e.uuid))!))
    .sort((a, b) => a - b);
  if (latencies.length === 0) return;
  say(
    'latency',
    `commit to delivery (receivedAt at the capture server), ${latencies.length} events: ` +
      `p50 ${elapsed(percentile(latencies, 50))} · p95 ${elapsed(percentile(latencies, 95))} · max ${elapsed(latencies.at(-1)!)}`,
  );
}

/** With the user's PostHog project: what the demo committed (PostHog's activity view shows what it received). */
export function reportSent(traffic: TrafficResult, identifiedByWorker: number): void {
  const sent = countBy(traffic.committed, (c) => c.event);
  out('What the demo committed to the outbox, by event (PostHog is yours: see its activity view for what it received):');
  const rows = eventOrder(sent.keys()).map((name) => [name, String(sent.get(name))]);
  rows.push(['total', String(traffic.committed.length)]);
  process.stdout.write(table(['event', 'committed'], rows));
  out(
    `(and the worker's ${identifiedByWorker} $identify/$groupidentify, ${(identifiedByWorker / Math.max(1, traffic.committed.length)).toFixed(2)} per event: ` +
      'on first sight, on change, after the refresh interval)',
  );
  out();
  say('rollback', `${traffic.rolledBack.length} event(s) recorded in transactions that rolled back (never in the outbox)`);
}
