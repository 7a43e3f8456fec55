/**
 * A bare /metrics endpoint for an offline command (`foldstream rebuild --metrics-port`): the app's HttpServer with its
 * routes, authentication and TLS is more than a command that runs for minutes needs. Answers GET /metrics, 404 else.
 */
import { createServer } from 'node:http';
import type { Registry } from 'prom-client';

export async function serveMetrics(registry: Registry, port: number, host = '0.0.0.0'): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (e: unknown) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(port, host, () => ok()));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
