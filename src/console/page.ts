/**
 * The page and its two files. The page is a skeleton the console's script fills from the JSON endpoints
 * (with text nodes only: nothing a row carries is ever parsed as HTML); the script and the style sheet are
 * files shipped with the package (`assets/console/`), served by the handler itself: the page loads nothing
 * from anywhere else and works without internet.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const here = import.meta.dirname;

/** `assets/console/`, from src/console/ (a clone) or dist/src/console/ (the package). */
export const ASSETS_FOLDER =
  [path.resolve(here, '../../assets/console'), path.resolve(here, '../../../assets/console')].find((dir) => existsSync(path.join(dir, 'console.js'))) ??
  path.resolve(here, '../../assets/console');

export interface Asset {
  type: string;
  body: Buffer;
}

const TYPES: Readonly<Record<string, string>> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

/** The page's scripts (ES modules), style sheets and icon, by the path the page asks for them by (`/console.js`), read once. */
export function loadAssets(): ReadonlyMap<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(ASSETS_FOLDER)) {
    const type = TYPES[path.extname(name)];
    if (type !== undefined && /^[a-z-]+\.[a-z]+$/.test(name)) assets.set(`/${name}`, { type, body: readFileSync(path.join(ASSETS_FOLDER, name)) });
  }
  return assets;
}

/** Text for HTML, quotes included (every value put into the page goes through it, also those already checked). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface PageSettings {
  basePath: string;
  schema: string;
  csrf: string;
  allowActions: boolean;
  refreshMs: number;
}

const th = (...names: string[]) => `<thead><tr>${names.map((n) => `<th>${n}</th>`).join('')}</tr></thead><tbody></tbody>`;

/** The page's HTML. */
export function pageHtml(s: PageSettings): string {
  const base = escapeHtml(s.basePath);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>posthog-outbox console</title>
<link rel="icon" href="${base}/favicon.svg">
<link rel="stylesheet" href="${base}/console.css">
<link rel="stylesheet" href="${base}/parts.css">
<script type="module" src="${base}/console.js"></script>
</head>
<body data-base="${base}" data-csrf="${escapeHtml(s.csrf)}" data-actions="${s.allowActions}" data-refresh-ms="${s.refreshMs}">
<header>
  <h1>posthog-outbox <span class="muted">schema ${escapeHtml(s.schema)}</span></h1>
  <span id="target-badge" class="badge">…</span>
  <span class="badge ${s.allowActions ? 'warn' : 'muted'}">${s.allowActions ? 'actions enabled' : 'read only'}</span>
  <span class="spacer"></span>
  <span id="updated" class="muted" role="status">loading…</span>
  <button type="button" id="pause">Pause</button>
</header>
<p id="banner" class="banner" hidden></p>
<p id="result" class="result" role="status" hidden></p>
<main>
<section class="cards">
  <div class="card"><h2>Backlog</h2><p class="figure" data-figure="backlog">–</p><p class="sub"><span data-figure="due">–</span> due now, <span data-figure="retrying">–</span> waiting to retry</p></div>
  <div class="card"><h2>Oldest event</h2><p class="figure" data-figure="oldest">–</p><p class="sub">queued that long</p></div>
  <div class="card"><h2>Next retry</h2><p class="figure" data-figure="next-retry">–</p><p class="sub" data-figure="next-retry-at"></p></div>
  <div class="card"><h2>Dead letters</h2><p class="figure" data-figure="dead-letters">–</p><p class="sub"><span data-figure="reasons">–</span> reason(s)</p></div>
  <div class="card"><h2>Profiles known</h2><p class="figure" data-figure="profiles">–</p><p class="sub" data-figure="profiles-oldest"></p></div>
</section>
<section>
  <h2>PostHog target</h2>
  <dl id="target" class="facts"></dl>
</section>
<section>
  <h2>Delivery, last hour <span class="muted">per minute</span></h2>
  <div class="charts"><figure id="chart-rate"></figure><figure id="chart-lag"></figure></div>
  <p id="delivery-note" class="note"></p>
</section>
<section id="dead-letters">
  <h2>Dead letters</h2>
  <table id="reasons-table">${th('count', 'last died', 'reason', '')}</table>
  <form id="dl-filter" class="filters">
    <label>event <input name="event" autocomplete="off" spellcheck="false"></label>
    <label>reason contains <input name="reason" autocomplete="off" spellcheck="false"></label>
    <label>died after <input name="after" type="datetime-local" step="1"></label>
    <label>died before <input name="before" type="datetime-local" step="1"></label>
    <label>show <input name="limit" type="number" min="1" max="500" value="50"></label>
    <button type="submit">Filter</button> <button type="reset">Clear</button>
    <span class="muted">times in UTC</span>
  </form>
  <p class="toolbar"><span id="dl-count" class="muted"></span>${
    s.allowActions
      ? ' <button type="button" id="dl-replay" disabled>Replay selected</button> <button type="button" id="dl-discard" class="danger" disabled>Discard selected</button>'
      : ''
  }</p>
  <table id="dl-table">${th(s.allowActions ? '<input type="checkbox" id="dl-all" aria-label="select all">' : '', 'uuid', 'event', 'distinct id', 'attempts', 'died', 'reason')}</table>
  <div id="dl-detail" class="detail" hidden><h3 id="dl-detail-title"></h3><button type="button" id="dl-close">Close</button><pre id="dl-json"></pre></div>
</section>
<section>
  <h2>Waiting to retry <span class="muted">the first 10, soonest first</span></h2>
  <table id="retrying-table">${th('uuid', 'event', 'attempts', 'next attempt', 'last error')}</table>
</section>
<div class="columns">
<section>
  <h2>Backlog by event</h2>
  <table id="backlog-table">${th('event', 'queued', 'due', 'retrying', 'oldest')}</table>
  <p id="backlog-more" class="note"></p>
</section>
<section>
  <h2>Re-identification <span class="muted">profiles PostHog was told about</span></h2>
  <table id="profiles-table">${th('kind', 'known', 'oldest last identify')}</table>
</section>
</div>
<section>
  <h2>Workers seen <span class="muted">last day</span></h2>
  <table id="workers-table">${th('host', 'pid', 'state', 'started', 'heartbeat', 'memory', 'last drain job', 'last failed job')}</table>
  <p id="workers-note" class="note"></p>
</section>
${
  s.allowActions
    ? `<section>
  <h2>Forget <span class="muted">erasure request</span></h2>
  <form id="forget-form" class="filters">
    <label>kind <select name="kind"><option value="user">user</option><option value="organization">organization</option><option value="automation">automation</option></select></label>
    <label>id <input name="id" required autocomplete="off" spellcheck="false"></label>
    <button type="submit" class="danger">Forget…</button>
  </form>
</section>`
    : ''
}
</main>
<dialog id="confirm"><p id="confirm-text"></p><p class="buttons"><button type="button" id="confirm-cancel">Cancel</button> <button type="button" id="confirm-ok" class="danger">Confirm</button></p></dialog>
<noscript><p class="banner">This page needs JavaScript: its own file, nothing from elsewhere.</p></noscript>
</body>
</html>
`;
}
