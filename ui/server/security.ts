/**
 * The dashboard server's guard: it must not become a hole into the user's AWS account.
 *
 * The server holds the user's credentials (through the SDK client) and can cancel their work, so
 * every request must come from the page `valence ui` printed, in a browser on this machine:
 * - it listens on 127.0.0.1 only;
 * - the `Host` header must name that address (or `localhost`) and the port, which defeats DNS
 *   rebinding (a foreign name resolving to 127.0.0.1);
 * - every request carries the per-start token: first in the printed URL's query, then in an
 *   `HttpOnly`, `SameSite=Strict` cookie the first load sets (or, for scripts, a header);
 * - state-changing requests (`POST`) with the cookie must come from the page's own origin
 *   (`Origin` header), with a JSON body, so no other site can cancel through a form or a fetch.
 *
 * @module
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Header a script may send the token in instead of the cookie. */
export const TOKEN_HEADER = 'x-valence-ui-token';

/** Why a request was refused, with the HTTP status to answer. */
export interface Refusal {
  readonly status: 401 | 403 | 415 | 421;
  readonly code: string;
  readonly message: string;
}

/** A new random token for one start of the server (24 bytes, URL-safe). */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from timings. */
export function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The cookie name; it carries the port so two dashboards on one machine do not collide. */
export const cookieName = (port: number): string => `valence_ui_${port}`;

/** The `Set-Cookie` header value the first load answers with. */
export function tokenCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}

function cookieValue(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/** The Host values this server answers to. */
export function allowedHosts(port: number): ReadonlySet<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
}

/**
 * Checks one request. `queryToken` is the `token` query parameter of a page load, accepted
 * only on `GET /` (the caller then sets the cookie). Returns how the request authenticated,
 * or why it is refused.
 */
export function checkRequest(
  request: IncomingMessage,
  options: { readonly port: number; readonly token: string; readonly queryToken?: string | undefined },
): { readonly via: 'cookie' | 'header' | 'query' } | Refusal {
  const host = request.headers.host ?? '';
  if (!allowedHosts(options.port).has(host.toLowerCase())) {
    return { status: 421, code: 'BAD_HOST', message: `This server answers only to 127.0.0.1:${options.port}, not to Host "${host}"` };
  }
  const header = request.headers[TOKEN_HEADER];
  const via = sameToken(typeof header === 'string' ? header : undefined, options.token)
    ? ('header' as const)
    : sameToken(cookieValue(request, cookieName(options.port)), options.token)
      ? ('cookie' as const)
      : sameToken(options.queryToken, options.token)
        ? ('query' as const)
        : undefined;
  if (!via) return { status: 401, code: 'NO_TOKEN', message: 'Open the URL that `valence ui` printed (it carries this start’s token)' };
  const method = request.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    // A browser always sends Origin on a cross-origin POST, and on same-origin fetch POSTs;
    // the cookie alone must never authorise a write from elsewhere.
    const origin = request.headers.origin;
    if (via !== 'header' && origin !== `http://${host}`) {
      return { status: 403, code: 'CROSS_ORIGIN', message: `Refused a ${method} from origin ${origin ?? '(none)'}; only this dashboard's own page may change anything` };
    }
    const fetchSite = request.headers['sec-fetch-site'];
    if (typeof fetchSite === 'string' && fetchSite !== 'same-origin' && fetchSite !== 'none') {
      return { status: 403, code: 'CROSS_SITE', message: `Refused a ${method} marked Sec-Fetch-Site: ${fetchSite}` };
    }
    if (!(request.headers['content-type'] ?? '').startsWith('application/json')) {
      return { status: 415, code: 'NOT_JSON', message: `A ${method} must send Content-Type: application/json` };
    }
  }
  return { via };
}

/** Headers every answer carries: no framing, no sniffing, no referrer (the token is in URLs). */
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
} as const;
