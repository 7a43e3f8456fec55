/**
 * One HTTP port: /metrics (Prometheus text), /healthz (the process is alive), /readyz (every assigned task is
 * restored and running), and routes added by other parts (query API, command gateway). An optional bearer token
 * guards everything but the probes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../processors/types.ts';
import { redactSecrets } from '../secrets.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;

interface Route {
  /** label of foldstream_http_requests_total */
  name: string;
  method: string;
  pattern: RegExp;
  handler: RouteHandler;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  token: string | undefined;
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

export class HttpServer {
  private readonly server: Server;
  private readonly routes: Route[] = [];

  constructor(private readonly o: HttpServerOptions) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.route('GET', /^\/metrics$/, async (_req, res) => {
      const text = await o.registry.metrics();
      res.writeHead(200, { 'content-type': o.registry.contentType });
      res.end(text);
    }, 'metrics');
    this.route('GET', /^\/healthz$/, (_req, res) => sendJson(res, 200, { status: 'ok' }), 'healthz');
    this.route('GET', /^\/readyz$/, (_req, res) => {
      const r = o.readiness();
      sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', ...r.detail });
    }, 'readyz');
  }

  /** `name` labels the route in foldstream_http_requests_total. */
  route(method: string, pattern: RegExp, handler: RouteHandler, name = pattern.source): void {
    this.routes.push({ name, method, pattern, handler });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const probe = path === '/healthz' || path === '/readyz';
    let name = 'none';
    res.once('finish', () => this.o.onResponse?.(name, res.statusCode));
    if (this.o.token && !probe && req.headers.authorization !== `Bearer ${this.o.token}`) {
      name = 'unauthorized';
      sendJson(res, 401, { error: 'missing or wrong bearer token: send the header Authorization: Bearer <http.token>' });
      return;
    }
    const matching = this.routes.filter((r) => r.pattern.test(path));
    const r = matching.find((x) => x.method === req.method);
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
