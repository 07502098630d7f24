// The console page's delivery charts: per minute, from the console's own sampling (inline SVG, built node by
// node). The window is the last hour, or the time since the console started when that is shorter (at least
// 10 minutes): minutes before its first reading are not known, not zero.

import { $, count, duration, el, svg, utc } from './dom.js';

const SERIES = [
  ['delivered', 'delivered', 's-delivered'],
  ['retried', 'retried', 's-retried'],
  ['deadLettered', 'dead-lettered', 's-dead'],
];
const LAG = [['lagMs', 'lag (oldest queued event)', 's-lag']];

/** The smallest 1, 2 or 5 times a power of ten at least `v` (an even number from 2 up, so that half is whole). */
function niceCount(v) {
  if (v <= 2) return 2;
  const power = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * power).find((n) => n >= v);
}

const TIME_STEPS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600, 43200, 86400].map((s) => s * 1000);
/** The smallest round duration at least `v` milliseconds. */
function niceTime(v) {
  return TIME_STEPS.find((step) => step >= v) ?? Math.ceil(v / (2 * 86_400_000)) * 2 * 86_400_000;
}

/** The minutes to draw: those since the first reading (at least the last 10), up to the hour. */
function visible(minutes, since) {
  if (!since) return minutes.slice(-10);
  const first = Math.floor(Date.parse(since) / 60_000) * 60_000;
  const start = minutes.findIndex((m) => Date.parse(m.minute) >= first);
  return minutes.slice(Math.min(Math.max(0, start), minutes.length - 10));
}

function chart(minutes, series, { nice, format, title }) {
  const [W, H, left, right, top, bottom] = [640, 170, 56, 8, 10, 22];
  const values = minutes.flatMap((m) => series.map(([key]) => m[key])).filter((v) => v !== null);
  const max = nice(Math.max(0, ...values));
  const last = minutes.length - 1;
  const step = (W - left - right) / last;
  const x = (i) => left + i * step;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'chart' });
  root.append(svg('title', {}, title));
  for (const v of [0, max / 2, max])
    root.append(
      svg('line', { x1: left, x2: W - right, y1: y(v), y2: y(v), class: 'grid' }),
      svg('text', { x: left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, format(v)),
    );
  for (const [i, anchor] of [
    [0, 'start'],
    [Math.round(last / 2), 'middle'],
    [last, 'end'],
  ])
    root.append(svg('text', { x: x(i), y: H - 6, class: 'axis', 'text-anchor': anchor }, i === last ? 'now' : `−${last - i} min`));
  for (const [key, , css] of series) {
    let points = [];
    const flush = () => {
      if (points.length === 1) root.append(svg('circle', { cx: points[0][0], cy: points[0][1], r: 2.5, class: `dot ${css}` }));
      if (points.length > 1) root.append(svg('polyline', { points: points.map((p) => p.join(',')).join(' '), class: `line ${css}` }));
      points = [];
    };
    minutes.forEach((m, i) => {
      if (m[key] === null) flush();
      else points.push([x(i).toFixed(1), y(m[key]).toFixed(1)]);
    });
    flush();
  }
  minutes.forEach((m, i) => {
    const words = series.map(([key, label]) => `${label} ${m[key] === null ? 'not sampled' : format(m[key])}`).join(', ');
    const band = svg('rect', { x: x(i) - step / 2, y: top, width: step, height: H - top - bottom, class: 'band' });
    band.append(svg('title', {}, `${utc(m.minute).slice(11, 16)} UTC: ${words}`));
    root.append(band);
  });
  const legend = el('figcaption', {}, ...series.map(([, label, css]) => el('span', { class: `key ${css}` }, label)));
  return [root, legend];
}

export function renderDelivery(delivery) {
  const minutes = visible(delivery.minutes, delivery.since);
  const plain = (v) => count(Math.round(v));
  $('chart-rate').replaceChildren(...chart(minutes, SERIES, { nice: niceCount, format: plain, title: 'Events per minute: delivered, retried, dead-lettered' }));
  $('chart-lag').replaceChildren(
    ...chart(minutes, LAG, { nice: niceTime, format: (v) => (v === 0 ? '0' : duration(v)), title: 'Lag at the end of each minute' }),
  );
  const since = delivery.since ? `since ${utc(delivery.since)}` : 'from its first reading';
  $('delivery-note').textContent =
    `Sampled by this console every ${duration(delivery.sampleIntervalMs)} ${since} from PostgreSQL's statistics of the outbox tables ` +
    '(the database keeps no delivery history: the chart starts when the console does). Delivered: rows that left the outbox other than to the dead ' +
    'letters (identify rows superseded and rows forgotten included); retried: outbox rows rescheduled after a failed attempt; lag: the oldest queued event’s age.' +
    (delivery.error ? ` Last reading failed: ${delivery.error}` : '');
}
