/**
 * One HTTP port: /metrics (Prometheus text), /healthz (the process is alive), /readyz (every assigned task is
 * restored and running), and routes added by other parts (query API, command gateway). An optional bearer token
 * guards everything but the probes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../processors/types.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;

interface Route {
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
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
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
    });
    this.route('GET', /^\/healthz$/, (_req, res) => sendJson(res, 200, { status: 'ok' }));
    this.route('GET', /^\/readyz$/, (_req, res) => {
      const r = o.readiness();
      sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', ...r.detail });
    });
  }

  route(method: string, pattern: RegExp, handler: RouteHandler): void {
    this.routes.push({ method, pattern, handler });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const probe = path === '/healthz' || path === '/readyz';
    if (this.o.token && !probe && req.headers.authorization !== `Bearer ${this.o.token}`) {
      sendJson(res, 401, { error: 'missing or wrong bearer token' });
      return;
    }
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      if (r.method !== req.method) continue;
      try {
        await r.handler(req, res, m.slice(1).map((s) => decodeURIComponent(s)));
      } catch (e) {
        this.o.log.error({ event: 'http.error', path, error: (e as Error).message });
        if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
      }
      return;
    }
    sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
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
