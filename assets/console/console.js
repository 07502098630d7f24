// The posthog-outbox console's page script (served by the package itself; no other script runs on the page).
// It fills the page from the console's JSON endpoints, with text nodes only: nothing the outbox holds is ever
// parsed as HTML (dom.js). Actions are POSTs carrying the page's CSRF secret, each confirmed first (dead-letters.js).

import { renderDelivery } from './chart.js';
import { filterBy, loadDeadLetters, setupDeadLetters } from './dead-letters.js';
import { $, ago, cell, count, duration, el, figure, fill, num, REFRESH_MS, request, short, show, utc } from './dom.js';

/** `in 3m 12s`, or `due now` for a time that has come. */
const until = (iso) => (Date.parse(iso) <= Date.now() ? 'due now' : `in ${duration(Date.parse(iso) - Date.now())}`);

// ---- the overview ------------------------------------------------------------------------------------------

function renderSummary(status) {
  figure('backlog').textContent = count(status.backlog);
  figure('due').textContent = count(status.due);
  figure('retrying').textContent = count(status.retrying);
  figure('oldest').textContent = status.oldestAgeMs === null ? '–' : duration(status.oldestAgeMs);
  figure('next-retry').textContent = status.nextRetryAt === null ? '–' : until(status.nextRetryAt);
  figure('next-retry-at').textContent = utc(status.nextRetryAt);
  figure('dead-letters').textContent = count(status.deadLetters);
  figure('reasons').textContent = count(status.deadLettersByReason.length);
  figure('profiles').textContent = count(status.profiles.known);
  figure('profiles-oldest').replaceChildren(...(status.profiles.oldestSentAt ? ['oldest identified ', ago(status.profiles.oldestSentAt)] : []));
}

function renderTarget(status, workers) {
  const badge = $('target-badge');
  const target = status.target;
  badge.textContent = target === null ? 'no worker has reported yet' : target.failingSince === null ? 'PostHog accepting' : 'PostHog FAILING';
  badge.className = `badge ${target === null ? 'muted' : target.failingSince === null ? 'ok' : 'bad'}`;
  const facts = [];
  const fact = (term, ...value) => facts.push(el('dt', {}, term), el('dd', {}, ...value));
  if (target === null) fact('state', 'no worker has reported yet');
  else if (target.failingSince === null) fact('state', el('span', { class: 'ok-text' }, 'accepting'), ' (last reported ', ago(target.updatedAt), ')');
  else {
    fact(
      'state',
      el('strong', { class: 'bad-text' }, 'FAILING'),
      ' since ',
      utc(target.failingSince),
      ` (${duration(Date.now() - Date.parse(target.failingSince))})`,
    );
    fact('reason', el('span', { class: 'reason' }, target.reason ?? ''));
    fact('last seen', ago(target.updatedAt));
  }
  const drain = status.drainFailing;
  if (drain === null) fact('drain', 'no failing drain passes');
  else fact('drain', el('strong', { class: 'bad-text' }, 'FAILING'), ` since ${utc(drain.since)}: `, el('span', { class: 'reason' }, drain.reason ?? ''));
  const failed = (workers.seen ?? [])
    .map((w) => w.lastErrorAt)
    .filter(Boolean)
    .sort()
    .at(-1);
  fact('last failed drain job', failed ? ago(failed) : 'none recorded by the live workers');
  $('target').replaceChildren(...facts);
}

function renderTables(overview) {
  const { status, backlogByEvent, profiles, workers } = overview;
  fill(
    $('backlog-table').tBodies[0],
    backlogByEvent.events.map((e) => el('tr', {}, cell(e.event), num(e.queued), num(e.due), num(e.retrying), cell(duration(e.oldestAgeMs)))),
    'nothing queued',
    5,
  );
  const more = backlogByEvent.names - backlogByEvent.events.length;
  $('backlog-more').textContent = more > 0 ? `and ${count(more)} more event name(s)` : '';
  fill(
    $('retrying-table').tBodies[0],
    status.retryingRows.map((r) =>
      el(
        'tr',
        {},
        cell(r.uuid, { class: 'mono' }),
        cell(r.event),
        num(r.attempts),
        cell(until(r.nextAttemptAt)),
        cell(short(r.lastError, 300), { class: 'clip', title: r.lastError ?? '' }),
      ),
    ),
    'no row waiting to retry',
    5,
  );
  fill(
    $('reasons-table').tBodies[0],
    status.deadLettersByReason.map((r) => {
      const filter = el('button', { type: 'button', class: 'link' }, 'filter');
      filter.addEventListener('click', () => filterBy({ reason: r.reason }));
      return el('tr', {}, num(r.count), cell(ago(r.lastDiedAt)), cell(short(r.reason, 160), { class: 'reason', title: r.reason }), el('td', {}, filter));
    }),
    'no dead letters',
    4,
  );
  fill(
    $('profiles-table').tBodies[0],
    profiles.map((p) => el('tr', {}, cell(p.kind), num(p.known), cell(ago(p.oldestSentAt)))),
    'no profile identified yet',
    3,
  );
  renderWorkers(workers);
}

function renderWorkers(workers) {
  const mb = (bytes) => (bytes === null ? '–' : `${Math.round(bytes / 2 ** 20)} MB`);
  const state = (w) => (w.live ? el('span', { class: 'ok-text' }, 'live') : w.stoppedAt ? 'stopped' : el('span', { class: 'bad-text' }, 'quiet'));
  fill(
    $('workers-table').tBodies[0],
    (workers.seen ?? []).map((w) =>
      el(
        'tr',
        {},
        cell(w.host),
        cell(String(w.pid), { class: 'num' }),
        el('td', {}, state(w), w.crashRestarts > 0 ? ` (${w.crashRestarts} crash restart(s))` : ''),
        cell(ago(w.startedAt)),
        cell(ago(w.heartbeatAt)),
        cell(mb(w.rssBytes)),
        cell(w.lastJobEndedAt ? ago(w.lastJobEndedAt) : '–'),
        cell(w.lastErrorAt ? ago(w.lastErrorAt) : '–'),
      ),
    ),
    workers.seen === null ? 'unknown' : 'no worker seen in the last day',
    8,
  );
  $('workers-note').textContent =
    `${count(workers.sessions)} database session(s) of worker pools open now. ` +
    (workers.unavailable ? `Workers unknown: ${workers.unavailable}.` : "From pg-boss's instance registry, refreshed on each worker's heartbeat (30 s).");
}

// ---- refresh -----------------------------------------------------------------------------------------------

let paused = false;
let timer;

async function refresh() {
  clearTimeout(timer);
  try {
    const overview = await request('/api/overview');
    renderSummary(overview.status);
    renderTarget(overview.status, overview.workers);
    renderDelivery(overview.delivery);
    renderTables(overview);
    await loadDeadLetters();
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    show('banner', '');
  } catch (error) {
    show('banner', `Could not refresh: ${error.message}`);
  }
  if (!paused) timer = setTimeout(refresh, REFRESH_MS);
}

$('pause').addEventListener('click', () => {
  paused = !paused;
  $('pause').textContent = paused ? 'Resume' : 'Pause';
  if (paused) clearTimeout(timer);
  else refresh();
});
setupDeadLetters(refresh);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && !paused) refresh();
});
refresh();
