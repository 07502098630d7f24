// The console page's dead letters: the filtered list, one event whole, and the actions (replay, discard, forget),
// each confirmed first and reported with how many rows it changed.

import { $, ACTIONS, act, ago, cell, count, el, fill, num, request, short, show } from './dom.js';

const selected = new Set();
let filter = { limit: '50' };

export function filterBy(values) {
  const form = $('dl-filter');
  for (const name of ['event', 'reason', 'after', 'before']) form.elements[name].value = values[name] ?? '';
  form.requestSubmit();
}

function readFilter() {
  const form = $('dl-filter');
  const value = (name) => form.elements[name].value.trim();
  const time = (name) => (value(name) ? new Date(`${value(name)}Z`).toISOString() : '');
  filter = { event: value('event'), reason: value('reason'), after: time('after'), before: time('before'), limit: value('limit') || '50' };
}

export async function loadDeadLetters() {
  const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== ''));
  const { deadLetters, matched } = await request(`/api/dead-letters?${query}`);
  const shown = new Set(deadLetters.map((d) => d.uuid));
  for (const uuid of selected) if (!shown.has(uuid)) selected.delete(uuid);
  fill($('dl-table').tBodies[0], deadLetters.map(deadLetterRow), 'no dead letter matches', 7);
  $('dl-count').textContent = `${count(deadLetters.length)} shown of ${count(matched)} matching, newest first`;
  updateSelection(deadLetters.length);
}

function deadLetterRow(d) {
  const open = el('button', { type: 'button', class: 'link mono', title: 'show the event' }, d.uuid);
  open.addEventListener('click', () => openDeadLetter(d.uuid).catch((error) => show('result', error.message, 'bad')));
  const pick = ACTIONS ? el('input', { type: 'checkbox', 'aria-label': `select ${d.uuid}`, 'data-uuid': d.uuid }) : null;
  if (pick) {
    pick.checked = selected.has(d.uuid);
    pick.addEventListener('change', () => {
      if (pick.checked) selected.add(d.uuid);
      else selected.delete(d.uuid);
      updateSelection();
    });
  }
  return el(
    'tr',
    { 'data-uuid': d.uuid },
    el('td', {}, pick),
    el('td', {}, open),
    cell(d.event),
    cell(short(d.distinctId, 40)),
    num(d.attempts),
    cell(ago(d.diedAt)),
    cell(short(d.reason, 300), { class: 'reason clip', title: d.reason }),
  );
}

function updateSelection(rows = $('dl-table').tBodies[0].querySelectorAll('input[type=checkbox]').length) {
  if (!ACTIONS) return;
  $('dl-replay').disabled = selected.size === 0;
  $('dl-discard').disabled = selected.size === 0;
  $('dl-replay').textContent = `Replay selected (${selected.size})`;
  $('dl-discard').textContent = `Discard selected (${selected.size})`;
  $('dl-all').checked = rows > 0 && selected.size === rows;
}

async function openDeadLetter(uuid) {
  const detail = await request(`/api/dead-letters/${encodeURIComponent(uuid)}`);
  $('dl-detail-title').textContent = `Dead letter ${detail.uuid}: ${detail.event}`;
  $('dl-json').textContent = JSON.stringify(detail, null, 2);
  $('dl-detail').hidden = false;
  $('dl-detail').scrollIntoView({ block: 'nearest' });
}

function confirmDialog(text, label) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = label;
  return new Promise((resolve) => {
    const done = (answer) => () => {
      dialog.close();
      resolve(answer);
    };
    $('confirm-ok').onclick = done(true);
    $('confirm-cancel').onclick = done(false);
    dialog.oncancel = done(false);
    dialog.showModal();
  });
}

async function replaySelected() {
  const ids = [...selected];
  const ok = await confirmDialog(
    `Replay ${ids.length} dead letter(s)? They go back into the outbox with their attempts reset, due now, with the same uuid and timestamp (PostHog drops a duplicate).`,
    `Replay ${ids.length}`,
  );
  if (!ok) return;
  const { moved } = await act('/api/dead-letters/replay', { ids });
  selected.clear();
  show('result', `Replayed ${moved} dead letter(s): back in the outbox, due now.`, 'ok');
}

async function discardSelected() {
  const ids = [...selected];
  const ok = await confirmDialog(`Discard ${ids.length} dead letter(s)? They are deleted for good: PostHog never receives them.`, `Discard ${ids.length}`);
  if (!ok) return;
  const { deleted, asked } = await act('/api/dead-letters/discard', { ids });
  selected.clear();
  show('result', `Discarded ${deleted} of ${asked} dead letter(s)${deleted < asked ? ' (the others were no longer dead letters)' : ''}.`, 'ok');
}

async function forgetOne(form) {
  const kind = form.elements.kind.value;
  const id = form.elements.id.value.trim();
  const ok = await confirmDialog(
    `Forget ${kind} "${id}"? In one transaction this deletes the queued events that touched them, the identify rows about them, their dead letters and their remembered profile. It cannot be undone; what PostHog already received must be erased in PostHog.`,
    `Forget ${kind}`,
  );
  if (!ok) return;
  const { forgotten } = await act('/api/forget', { kind, id });
  const f = forgotten[0];
  show(
    'result',
    `Forgot ${f.kind} "${f.id}": deleted ${f.queued} queued event(s), ${f.deadLetters} dead letter(s)${f.profile ? ' and the remembered profile' : ', no remembered profile'}.`,
    'ok',
  );
  form.reset();
}

/** Runs an action, reports its failure, and refreshes the figures either way. */
function acting(onChange, work) {
  return () =>
    work()
      .catch((error) => show('result', `Refused: ${error.message}`, 'bad'))
      .finally(() => onChange());
}

/** Wires the filter, the detail view and the actions; `onChange` refreshes the page after an action. */
export function setupDeadLetters(onChange) {
  $('dl-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    readFilter();
    loadDeadLetters().catch((error) => show('result', error.message, 'bad'));
  });
  $('dl-filter').addEventListener('reset', () =>
    setTimeout(() => {
      readFilter();
      loadDeadLetters().catch((error) => show('result', error.message, 'bad'));
    }),
  );
  $('dl-close').addEventListener('click', () => {
    $('dl-detail').hidden = true;
  });
  if (ACTIONS) {
    $('dl-replay').addEventListener('click', acting(onChange, replaySelected));
    $('dl-discard').addEventListener('click', acting(onChange, discardSelected));
    $('dl-all').addEventListener('change', () => {
      for (const box of $('dl-table').tBodies[0].querySelectorAll('input[type=checkbox]')) {
        box.checked = $('dl-all').checked;
        if (box.checked) selected.add(box.dataset.uuid);
        else selected.delete(box.dataset.uuid);
      }
      updateSelection();
    });
    $('forget-form').addEventListener('submit', (event) => {
      event.preventDefault();
      acting(onChange, () => forgetOne(event.target))();
    });
  }
}
