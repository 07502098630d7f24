/**
 * What keeps the console to its operator: the token every request must carry (when one is set), the Host
 * header a loopback console answers to (DNS rebinding), the checks an action must pass (CSRF: a per-process
 * secret in a header, the request's own origin, JSON), and the headers of every response. Pure.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * The headers of every response: no script but the console's own file, nothing loaded from elsewhere, never in
 * a frame, no referrer, no sniffing, nothing cached.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** The header the page sends its CSRF secret in. */
export const CSRF_HEADER = 'x-posthog-outbox-csrf';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Whether `given` is `expected`, in time that does not depend on where they differ (over their hashes, so also not on their lengths). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** A new per-process secret, for the page to send back with each action. */
export function newCsrfSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The token a request carries: `Authorization: Bearer <token>`, or the password of `Authorization: Basic` (any user name). */
export function presentedToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const [scheme, value] = header.trim().split(/\s+/, 2) as [string, string | undefined];
  if (value === undefined) return undefined;
  if (/^bearer$/i.test(scheme)) return value;
  if (!/^basic$/i.test(scheme)) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** Whether the request carries `token` (always true without one). */
export function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const given = presentedToken(req);
  return given !== undefined && sameSecret(given, token);
}

/** The host name of a Host header (or of an Origin's authority), lower case, without its port or an IPv6 address's brackets. */
export function hostName(authority: string): string {
  const host = authority.trim().toLowerCase();
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') < 0 ? undefined : host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** Whether an address or host name is this machine's loopback: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (name === 'localhost' || name === '::1' || name === '::ffff:127.0.0.1') return true;
  return isIP(name) === 4 && name.startsWith('127.');
}

/** Names a loopback console answers to (a DNS-rebinding page's own name is none of them). */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/**
 * Why an action (a POST) is refused as a possible cross-site request, or undefined when it passes: it must be
 * JSON, carry the page's secret in `x-posthog-outbox-csrf`, and, when the browser says where it comes from
 * (`Sec-Fetch-Site`, `Origin`), come from the console's own origin. A form on another site can send none of
 * these; a script on another site cannot add the header without a preflight, which is never granted.
 */
export function csrfRefusal(req: IncomingMessage, secret: string): string | undefined {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return `a ${site} request`;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost: string;
    try {
      originHost = new URL(origin).host.toLowerCase();
    } catch {
      return `an opaque origin (${origin.slice(0, 40)})`;
    }
    const hosts = [req.headers.host, req.headers['x-forwarded-host']].filter((h): h is string => typeof h === 'string').map((h) => h.toLowerCase());
    if (!hosts.includes(originHost)) return `a request from another origin (${originHost.slice(0, 100)})`;
  }
  const given = req.headers[CSRF_HEADER];
  if (typeof given !== 'string' || !sameSecret(given, secret)) return `no valid ${CSRF_HEADER} header`;
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return 'not a JSON request';
  return undefined;
}
