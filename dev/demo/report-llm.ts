/**
 * The demo report's LLM analytics: what PostHog's LLM analytics got (generations, spans and traces) per model and
 * per organization, with the cost where the application knew it (PostHog computes the others' at ingestion, which
 * the local capture server does not). test/demo.test.ts reads these lines.
 */
import type { ReceivedEvent } from '../capture-server.ts';
import { out, say, table } from './print.ts';

/** Dollars summed over the events that carry `$ai_total_cost_usd`: `$0.0123`, `$0.0123 (3 of 5)` when only some do, `-` when none does. */
export function cost(events: readonly ReceivedEvent[]): string {
  const known = events.map((e) => e.properties.$ai_total_cost_usd).filter((c): c is number => typeof c === 'number');
  if (known.length === 0) return '-';
  const sum = `$${known.reduce((a, b) => a + b, 0).toFixed(4)}`;
  return known.length === events.length ? sum : `${sum} (${known.length} of ${events.length})`;
}

const sum = (events: readonly ReceivedEvent[], key: string) => events.reduce((n, e) => n + (Number(e.properties[key]) || 0), 0);

export function reportLlmAnalytics(firsts: readonly ReceivedEvent[]): void {
  const ai = firsts.filter((e) => e.event.startsWith('$ai_'));
  if (ai.length === 0) return;
  const generations = ai.filter((e) => e.event === '$ai_generation');
  const spans = ai.filter((e) => e.event === '$ai_span');
  const traces = ai.filter((e) => e.event === '$ai_trace');
  out('LLM analytics (cost where the application knew the price; PostHog computes the others from model, provider and tokens):');
  const models = Map.groupBy(generations, (e) => `${e.properties.$ai_model}\u0000${e.properties.$ai_provider ?? '-'}`);
  const modelRows = [...models]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, events]) => [
      ...key.split('\u0000'),
      String(events.length),
      String(events.filter((e) => e.properties.$ai_is_error === true).length),
      String(sum(events, '$ai_input_tokens')),
      String(sum(events, '$ai_output_tokens')),
      cost(events),
    ]);
  process.stdout.write(table(['model', 'provider', 'generations', 'errors', 'input tokens', 'output tokens', 'cost'], modelRows));
  out();
  const organizations = Map.groupBy(ai, (e) => String(e.properties.organization_id));
  const organizationRows = [...organizations]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, events]) => {
      const of = (name: string) => events.filter((e) => e.event === name);
      return [id, String(of('$ai_generation').length), String(of('$ai_span').length), String(of('$ai_trace').length), cost(of('$ai_generation'))];
    });
  process.stdout.write(table(['organization', 'generations', 'spans', 'traces', 'cost'], organizationRows));
  out();
  const failed = traces.filter((e) => e.properties.$ai_is_error === true).length;
  const runs = new Set(ai.map((e) => e.properties.$ai_trace_id)).size;
  say(
    'traces',
    `${traces.length} for ${runs} runs (one trace id each), ${failed} failed; ${spans.length} spans, ${spans.filter((e) => e.properties.$ai_is_error === true).length} errors`,
  );
  say('ai endpoint', `${ai.filter((e) => e.endpoint === 'ai').length} of ${ai.length} $ai_* events came through /i/v0/ai/batch/`);
}
