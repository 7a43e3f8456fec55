/**
 * Routed queries: any instance answers any query. A read of a partition this instance does not run is forwarded to
 * the instance the consumer group gave it to (its URL comes with the member's userData: task-owners.ts), and the
 * owner's answer is relayed with `x-foldstream-served-by: <its instance id>`. Rules (docs/http-api.md#routing):
 * - a forwarded request carries `x-foldstream-forwarded-by`; an instance never forwards such a request again (no
 *   loops, at most one hop): it answers from its own tasks or says why it cannot (421/503);
 * - a client that routes itself asks with `?route=client` (or `x-foldstream-route: client`) and gets the 421;
 * - the caller's Authorization header goes along unchanged: every instance of an app loads the same tokens, and the
 *   owner checks the scope again, so forwarding never grants more than the caller has;
 * - an owner reached over HTTPS is verified (system CAs, or http.routing.ca for certificates of your own);
 * - an owner that does not answer within http.routing.timeoutMs, a partition with no owner (a rebalance in
 *   progress), an owner that no longer runs it (the task moved since the group was asked) or an owner without a URL:
 *   503 with `reason` and Retry-After. Never someone else's value: only the owner's committed state is served.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const FORWARDED_BY = 'x-foldstream-forwarded-by';
export const SERVED_BY = 'x-foldstream-served-by';
export const ROUTE_HEADER = 'x-foldstream-route';

export interface QueryRouterOptions {
  /** this instance's id: a request is never forwarded to itself */
  instanceId: string;
  timeoutMs: number;
  /** PEM of the CAs that sign peers' HTTPS certificates (default: the system's) */
  ca?: string;
}

export interface TaskOwner {
  instanceId: string;
  url: string | undefined;
}

/** The owner's answer, relayed as is. */
export interface PeerAnswer {
  ok: true;
  status: number;
  contentType: string;
  retryAfter: string | undefined;
  body: Buffer;
  servedBy: string;
}

/** Why the owner could not be asked; answered as 503 with this reason. */
export interface PeerFailure {
  ok: false;
  reason: 'no_owner' | 'owner_without_url' | 'owner_unreachable' | 'moving';
  error: string;
  hostedBy?: { instanceId: string; url?: string };
}

/** Whether this request may be forwarded: not already forwarded, and the client did not ask to route itself. */
export function mayForward(req: IncomingMessage): boolean {
  if (req.headers[FORWARDED_BY] !== undefined) return false;
  if (String(req.headers[ROUTE_HEADER] ?? '').toLowerCase() === 'client') return false;
  const route = new URL(req.url ?? '/', 'http://localhost').searchParams.get('route');
  return route !== 'client';
}

export class QueryRouter {
  constructor(private readonly o: QueryRouterOptions) {}

  get instanceId(): string {
    return this.o.instanceId;
  }

  /** Sends `pathAndQuery` (default: the request's own) to the owner, with the caller's Authorization. */
  async forward(req: IncomingMessage, owner: TaskOwner | undefined, what: string, pathAndQuery = req.url ?? '/'): Promise<PeerAnswer | PeerFailure> {
    if (!owner) return { ok: false, reason: 'no_owner', error: `${what} has no live owner right now (the group is rebalancing, or its instance stopped and its session has not expired yet)` };
    const hostedBy = { instanceId: owner.instanceId, ...(owner.url === undefined ? {} : { url: owner.url }) };
    if (owner.instanceId === this.o.instanceId) {
      // the group says it is ours, but no task runs it here (yet, or any more): the group has moved on or is about to
      return { ok: false, reason: 'moving', error: `${what} is being handed over: the group gives it to this instance, whose task is not running it yet`, hostedBy };
    }
    if (!owner.url) return { ok: false, reason: 'owner_without_url', error: `${what} is run by instance ${owner.instanceId}, which serves no HTTP (http.enabled false) or advertises no URL`, hostedBy };
    let target: URL;
    try {
      // the owner URL may carry a path prefix (behind a proxy): keep it
      const base = new URL(owner.url);
      target = new URL(`${base.pathname.replace(/\/$/, '')}${pathAndQuery}`, base);
    } catch {
      return { ok: false, reason: 'owner_without_url', error: `${what} is run by instance ${owner.instanceId}, whose advertised URL ${JSON.stringify(owner.url)} is not a URL`, hostedBy };
    }
    const headers: Record<string, string> = { [FORWARDED_BY]: this.o.instanceId, accept: 'application/json' };
    if (req.headers.authorization !== undefined) headers.authorization = req.headers.authorization;
    try {
      const r = await this.send(target, headers);
      if (r.status === 421) {
        // the owner the group named no longer runs it: it moved after we asked
        return { ok: false, reason: 'moving', error: `${what} is moving between instances: ${owner.instanceId} no longer runs it`, hostedBy };
      }
      return { ok: true, ...r, servedBy: owner.instanceId };
    } catch (e) {
      return { ok: false, reason: 'owner_unreachable', error: `${what} is run by instance ${owner.instanceId} at ${owner.url}, which did not answer: ${(e as Error).message}`, hostedBy };
    }
  }

  private send(url: URL, headers: Record<string, string>): Promise<Omit<PeerAnswer, 'ok' | 'servedBy'>> {
    return new Promise((resolve, reject) => {
      const https = url.protocol === 'https:';
      const options = { method: 'GET', headers, timeout: this.o.timeoutMs, ...(https && this.o.ca ? { ca: this.o.ca } : {}) };
      const req = (https ? httpsRequest : httpRequest)(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 502,
            contentType: String(res.headers['content-type'] ?? 'application/json; charset=utf-8'),
            retryAfter: res.headers['retry-after'] === undefined ? undefined : String(res.headers['retry-after']),
            body: Buffer.concat(chunks),
          });
        });
        res.on('error', reject);
      });
      // the socket timeout covers idle time only: bound the whole exchange too
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.o.timeoutMs} ms (http.routing.timeoutMs)`)), this.o.timeoutMs);
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.o.timeoutMs} ms (http.routing.timeoutMs)`)));
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end();
    });
  }
}
