/**
 * `createConsoleHandler`: the operator console as a Node request handler, `(req, res) => void`, for an
 * application to mount under its own admin routes (or for `posthog-outbox console`, server.ts, to serve).
 *
 * Every response carries the security headers (security.ts). With a token, every request must carry it (401
 * otherwise); with `allowedHosts`, a request naming another host is refused (DNS rebinding). The page and its
 * files are GETs; reads are GETs under `api/` that another site's page cannot make (`Sec-Fetch-Site`); actions
 * are POSTs under `api/`, refused unless `allowActions`, and refused without the page's CSRF secret, from
 * another origin, or not JSON (403). Each action is logged, and so is each refused one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import postgres from 'postgres';
import { OutboxError } from '../errors/errors.ts';
import { redactSecrets } from '../errors/redact.ts';
import { ConsoleApi, type Requester } from './api.ts';
import { loadAssets, pageHtml } from './page.ts';
import { DeliverySampler } from './sampler.ts';
import { authorized, csrfRefusal, hostName, newCsrfSecret, SECURITY_HEADERS } from './security.ts';
import { type ConsoleLogger, type ConsoleOptions, checkDatabase, resolveConsoleSettings } from './settings.ts';

export type ConsoleHandler = ((req: IncomingMessage, res: ServerResponse) => void) & {
  /** Stops the delivery sampler and closes the pool the console opened (an application's own `sql` is left open). */
  close(): Promise<void>;
};

/** A request body larger than this is refused (413): an action's body is a list of at most 1,000 uuids. */
const MAX_BODY_BYTES = 64 * 1024;
const UUID_PATH = /^\/api\/dead-letters\/([0-9a-fA-F-]{36})$/;

/** Lines on stderr, as pino writes them, when the application gives no logger. */
const stderrLogger: ConsoleLogger = Object.fromEntries(
  (['info', 'warn', 'error'] as const).map((level) => [
    level,
    (object: object, msg?: string) => process.stderr.write(`${JSON.stringify({ level, time: Date.now(), ...object, msg })}\n`),
  ]),
) as unknown as ConsoleLogger;

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function send(req: IncomingMessage, res: ServerResponse, type: string, body: string | Buffer): void {
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) throw new HttpError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // below
  }
  throw new HttpError(400, 'the body must be a JSON object');
}

/** The path below the console's base: a router that mounted the handler (Express: `originalUrl`) has taken its prefix off already. */
function consolePath(req: IncomingMessage, basePath: string): string | undefined {
  const path = new URL(req.url ?? '/', 'http://console.invalid').pathname;
  if ('originalUrl' in req || basePath === '') return path;
  if (path === basePath || path.startsWith(`${basePath}/`)) return path.slice(basePath.length);
  return undefined;
}

/** The answer to a request that failed: its status and what went wrong, as JSON (a database error logged too). */
function fail(res: ServerResponse, error: unknown, log: ConsoleLogger): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof HttpError) {
    sendJson(res, error.status, { error: error.message });
    return;
  }
  if (error instanceof OutboxError) {
    sendJson(res, 400, { error: `${error.field}: ${error.detail}`, field: error.field, code: error.code });
    return;
  }
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  log.error({ err: message }, 'console request failed');
  sendJson(res, 503, { error: `the database: ${message}` });
}

/** The console as a request handler; throws OutboxError on bad options (nothing started then). */
export function createConsoleHandler(options: ConsoleOptions): ConsoleHandler {
  const settings = resolveConsoleSettings(options);
  const database = checkDatabase(options);
  const owned = 'url' in database;
  const sql = owned
    ? postgres(database.url, { max: 3, connect_timeout: 10, onnotice: () => {}, connection: { application_name: 'posthog-outbox console' } })
    : database.sql;
  const log = options.logger ?? stderrLogger;
  const csrf = newCsrfSecret();
  const assets = loadAssets();
  const sampler = new DeliverySampler(sql, settings.schema, settings.sampleIntervalMs);
  const api = new ConsoleApi(sql, settings, sampler, log);
  const page = pageHtml({ ...settings, csrf });
  sampler.start();

  const who = (req: IncomingMessage): Requester => ({ address: req.socket.remoteAddress, userAgent: req.headers['user-agent']?.slice(0, 200) });

  async function action(req: IncomingMessage, path: string): Promise<unknown> {
    const name = path.slice('/api/'.length);
    const actions: Record<string, (body: Record<string, unknown>, who: Requester) => Promise<unknown>> = {
      'dead-letters/replay': (body, by) => api.replay(body, by),
      'dead-letters/discard': (body, by) => api.discard(body, by),
      forget: (body, by) => api.forget(body, by),
    };
    const run = Object.hasOwn(actions, name) ? actions[name] : undefined;
    if (!run) throw new HttpError(404, 'no such action');
    const crossSite = settings.allowActions ? csrfRefusal(req, csrf) : undefined;
    const refused = !settings.allowActions
      ? 'actions are turned off: this console runs read only (its allowActions setting)'
      : crossSite && `refused as a possible cross-site request: ${crossSite}`;
    if (refused) {
      log.warn({ action: name, refused, remoteAddress: req.socket.remoteAddress }, 'console action refused');
      throw new HttpError(403, refused);
    }
    return run(await readJson(req), who(req));
  }

  async function read(req: IncomingMessage, path: string, search: URLSearchParams): Promise<unknown> {
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') throw new HttpError(403, `refused: a ${site} request`);
    if (path === '/api/overview') return api.overview();
    if (path === '/api/dead-letters') return api.deadLetters(search);
    const uuid = UUID_PATH.exec(path)?.[1];
    if (uuid === undefined) throw new HttpError(404, 'not found');
    const detail = await api.deadLetter(uuid);
    if (detail === null) throw new HttpError(404, `no dead letter ${uuid}`);
    return detail;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    if (settings.allowedHosts && !settings.allowedHosts.has(hostName(req.headers.host ?? '')))
      throw new HttpError(421, 'this console does not answer to that host name');
    const path = consolePath(req, settings.basePath);
    if (path === undefined) throw new HttpError(404, 'not found');
    if (!authorized(req, settings.token)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="posthog-outbox console", charset="UTF-8"');
      throw new HttpError(401, 'this console needs its token: as the password of HTTP Basic authentication, or Authorization: Bearer <token>');
    }
    const search = new URL(req.url ?? '/', 'http://console.invalid').searchParams;
    if (path.startsWith('/api/')) {
      if (req.method === 'POST') return sendJson(res, 200, await action(req, path));
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET to read, POST to act');
      return sendJson(res, 200, await read(req, path, search));
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET');
    if (path === '') {
      res.writeHead(308, { Location: `${settings.basePath}/${search.size > 0 ? `?${search}` : ''}` });
      return void res.end();
    }
    if (path === '/') return send(req, res, 'text/html; charset=utf-8', page);
    const asset = assets.get(path);
    if (!asset) throw new HttpError(404, 'not found');
    send(req, res, asset.type, asset.body);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => fail(res, error, log));
  };
  return Object.assign(handler, {
    async close() {
      await sampler.stop();
      if (owned) await sql.end({ timeout: 5 });
    },
  });
}
