// The console page's shared pieces: its settings (from the page), DOM building with text nodes only, the
// CLI's formatting, and requests to the console's endpoints (actions with the page's CSRF secret).

const body = document.body;
export const BASE = body.dataset.base ?? '';
export const CSRF = body.dataset.csrf ?? '';
export const ACTIONS = body.dataset.actions === 'true';
export const REFRESH_MS = Number(body.dataset.refreshMs) || 5000;
const SVG = 'http://www.w3.org/2000/svg';

export const $ = (id) => document.getElementById(id);
export const figure = (name) => document.querySelector(`[data-figure="${name}"]`);

/** An element with text children (strings become text nodes, never markup). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'title') node.title = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

// Formatting, as the CLI prints it (cli/format.ts).
export const count = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
export function duration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  const parts = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first, first + 2)
    .map(([n, unit]) => `${n}${unit}`)
    .join(' ');
}
export const utc = (iso) => (iso ? `${iso.slice(0, 19).replace('T', ' ')} UTC` : '');
export const ago = (iso) => el('time', { datetime: iso, title: utc(iso) }, `${duration(Date.now() - Date.parse(iso))} ago`);
export const short = (text, max = 120) => {
  const flat = String(text ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

export function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: columns, class: 'muted' }, empty))]));
}
export const cell = (value, attributes = {}) => el('td', attributes, value);
export const num = (value) => el('td', { class: 'num' }, count(value));

export async function request(path, options = {}) {
  const response = await fetch(`${BASE}${path}`, { credentials: 'same-origin', ...options, headers: { accept: 'application/json', ...options.headers } });
  const text = await response.text();
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    data = { error: text.slice(0, 200) };
  }
  if (!response.ok) throw new Error(data.error ?? `HTTP ${response.status}`);
  return data;
}

export function act(path, payload) {
  return request(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-posthog-outbox-csrf': CSRF }, body: JSON.stringify(payload) });
}

export function show(id, text, kind) {
  const node = $(id);
  node.textContent = text;
  node.className = id === 'banner' ? 'banner' : `result ${kind ?? ''}`;
  node.hidden = !text;
}
