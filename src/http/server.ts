/**
 * One HTTP port: /metrics (Prometheus text), /healthz (the process is alive), /readyz (every assigned task is
 * restored and running), and routes added by other parts (query API, command gateway). Access (docs/security.md):
 * bearer tokens with scopes — `read` for the query API, `command` for the gateway, `metrics` for /metrics (or open
 * metrics) — compared in constant time; 401 without a valid token, 403 without the scope. The probes are always open.
 * Optional HTTPS, a request body limit (413) and a per-client rate limit (429).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../processors/types.ts';
import { redactSecrets } from '../secrets.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;

export type Scope = 'read' | 'command' | 'metrics';

interface Route {
  /** label of foldstream_http_requests_total */
  name: string;
  method: string;
  pattern: RegExp;
  handler: RouteHandler;
  /** the scope a token needs; undefined: open (the probes) */
  scope: Scope | undefined;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  /** a token with every scope (http.token) */
  token: string | undefined;
  /** tokens with their scopes (http.tokens) */
  tokens?: { token: string; scopes: Scope[] }[];
  /** /metrics without a token */
  openMetrics?: boolean;
  /** HTTPS: the certificate and key as PEM text */
  tls?: { cert: string; key: string; passphrase?: string | undefined };
  /** default 1 MiB */
  maxBodyBytes?: number;
  rateLimit?: { requestsPerSecond: number; burst?: number | undefined };
  /** the rate limiter's clock (tests) */
  now?: () => number;
  registry: Registry;
  /** readiness with a reason per processor, for /readyz */
  readiness: () => { ready: boolean; detail: Record<string, unknown> };
  log: Logger;
  /** called once per answered request (metrics) */
  onResponse?: (route: string, status: number) => void;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  // an error message quoting a secret (src/secrets.ts) never leaves the process
  const text = status >= 400 ? redactSecrets(JSON.stringify(body)) : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The tokens as digests, so every comparison takes the same time whatever the length or content of the candidate. */
class TokenTable {
  private readonly entries: { digest: Buffer; scopes: Set<Scope> }[];

  constructor(all: string | undefined, scoped: { token: string; scopes: Scope[] }[]) {
    this.entries = [
      ...(all ? [{ digest: digest(all), scopes: new Set<Scope>(['read', 'command', 'metrics']) }] : []),
      ...scoped.map((x) => ({ digest: digest(x.token), scopes: new Set(x.scopes) })),
    ];
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The scopes of the presented token (every entry is compared: no early exit), or undefined when none matches. */
  scopesOf(presented: string): Set<Scope> | undefined {
    const d = digest(presented);
    let found: Set<Scope> | undefined;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && !found) found = e.scopes;
    return found;
  }
}

/** Token buckets per client address. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly burst: number;

  constructor(
    private readonly perSecond: number,
    burst: number | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.burst = burst ?? perSecond;
  }

  /** 0 when the request may go ahead, else the seconds to wait. */
  take(client: string): number {
    const now = this.now();
    const b = this.buckets.get(client) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    this.buckets.set(client, b);
    if (this.buckets.size > 10_000) this.forgetFull(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / this.perSecond);
  }

  /** clients whose bucket has refilled are the same as new ones: forget them so the map stays small */
  private forgetFull(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
  }
}

const DEFAULT_MAX_BODY_BYTES = 1 << 20;

export class HttpServer {
  private readonly server: Server;
  private readonly routes: Route[] = [];
  private readonly tokens: TokenTable;
  private readonly limiter: RateLimiter | undefined;
  /** the largest request body a route may read */
  readonly maxBodyBytes: number;

  constructor(private readonly o: HttpServerOptions) {
    const listener = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = o.tls ? (createHttpsServer({ cert: o.tls.cert, key: o.tls.key, ...(o.tls.passphrase ? { passphrase: o.tls.passphrase } : {}) }, listener) as unknown as Server) : createServer(listener);
    this.tokens = new TokenTable(o.token, o.tokens ?? []);
    this.limiter = o.rateLimit ? new RateLimiter(o.rateLimit.requestsPerSecond, o.rateLimit.burst, o.now) : undefined;
    this.maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.route('GET', /^\/metrics$/, async (_req, res) => {
      const text = await o.registry.metrics();
      res.writeHead(200, { 'content-type': o.registry.contentType });
      res.end(text);
    }, 'metrics', o.openMetrics ? 'open' : 'metrics');
    this.route('GET', /^\/healthz$/, (_req, res) => sendJson(res, 200, { status: 'ok' }), 'healthz', 'open');
    this.route('GET', /^\/readyz$/, (_req, res) => {
      const r = o.readiness();
      sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', ...r.detail });
    }, 'readyz', 'open');
  }

  /**
   * `name` labels the route in foldstream_http_requests_total. `scope`: what a token needs (default: `read` for GET,
   * `command` otherwise); `open` for routes anyone may call.
   */
  route(method: string, pattern: RegExp, handler: RouteHandler, name = pattern.source, scope?: Scope | 'open'): void {
    const needs = scope === 'open' ? undefined : (scope ?? (method === 'GET' ? 'read' : 'command'));
    this.routes.push({ name, method, pattern, handler, scope: needs });
  }

  /** Answers 401, 403, 413 or 429 and returns false when the request may not reach its route. */
  private admit(req: IncomingMessage, res: ServerResponse, r: Route): boolean {
    if (r.scope === undefined) return true;
    if (this.limiter) {
      const wait = this.limiter.take(req.socket.remoteAddress ?? 'unknown');
      if (wait > 0) {
        res.setHeader('retry-after', String(wait));
        sendJson(res, 429, { error: `too many requests from this address; retry after ${wait} s (http.rateLimit)` });
        return false;
      }
    }
    if (this.tokens.enabled) {
      const header = req.headers.authorization ?? '';
      const scopes = header.startsWith('Bearer ') ? this.tokens.scopesOf(header.slice('Bearer '.length)) : undefined;
      if (!scopes) {
        res.setHeader('www-authenticate', 'Bearer realm="foldstream"');
        sendJson(res, 401, { error: `missing or unknown bearer token: send the header Authorization: Bearer <token> with a token of http.token or http.tokens that has scope ${r.scope}` });
        return false;
      }
      if (!scopes.has(r.scope)) {
        res.setHeader('www-authenticate', `Bearer realm="foldstream", error="insufficient_scope", scope="${r.scope}"`);
        sendJson(res, 403, { error: `this token lacks scope ${r.scope}, which ${req.method} ${r.name} needs; its scopes: ${[...scopes].join(', ')}` });
        return false;
      }
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > this.maxBodyBytes) {
      sendJson(res, 413, { error: `the body is larger than ${this.maxBodyBytes} bytes (http.maxBodyBytes)` });
      return false;
    }
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    let name = 'none';
    res.once('finish', () => this.o.onResponse?.(name, res.statusCode));
    const matching = this.routes.filter((r) => r.pattern.test(path));
    const r = matching.find((x) => x.method === req.method);
    // without a valid token nothing is said about the routes either
    const guard = r ?? matching[0] ?? { name: 'none', method: req.method ?? 'GET', pattern: /$^/, handler: () => undefined, scope: 'read' as Scope };
    if (!this.admit(req, res, guard)) {
      name = res.statusCode === 401 ? 'unauthorized' : res.statusCode === 403 ? 'forbidden' : res.statusCode === 429 ? 'rate_limited' : 'too_large';
      return;
    }
    if (!r) {
      if (matching.length) {
        res.setHeader('allow', [...new Set(matching.map((x) => x.method))].join(', '));
        sendJson(res, 405, { error: `${req.method} is not allowed on ${path}; use ${matching.map((x) => x.method).join(' or ')}` });
      } else sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
      return;
    }
    name = r.name;
    let params: string[];
    try {
      params = r.pattern.exec(path)!.slice(1).map((s) => decodeURIComponent(s));
    } catch {
      sendJson(res, 400, { error: `malformed percent-encoding in ${path}` });
      return;
    }
    try {
      await r.handler(req, res, params);
    } catch (e) {
      this.o.log.error({ event: 'http.error', path, error: (e as Error).message });
      if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
    }
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
