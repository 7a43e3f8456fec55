/**
 * The command gateway: `POST /commands/<commandType>` turns a JSON body into a command envelope, keyed as the
 * aggregate keys it (aggregateId, or tenantId:aggregateId), and writes it to the input topic of the aggregate that
 * handles the type. `?wait=<ms>` waits for the reply on the aggregate's replies topic (read_committed); on a timeout
 * the client retries with the same commandId, which the aggregate answers with its first reply (no second effect).
 * Routes and answers: docs/http-api.md.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RecordSender } from '../kafka/types.ts';
import type { AggregateInfo } from '../processors/spec.ts';
import { encode } from '../serde/codecs.ts';
import { aggregateKey, commandProblem, describeValue, isPlainObject, type CommandEnvelope } from '../serde/envelope.ts';
import { partitionForKey } from '../serde/murmur2.ts';
import type { Codec } from '../topology/schema.ts';
import type { ReplyWatcher } from './reply-watcher.ts';
import { sendJson, type HttpServer } from './server.ts';

const MAX_WAIT_MS = 120_000;
const FIELDS = ['aggregateId', 'data', 'expectedVersion', 'commandId', 'userId', 'correlationId', 'tenantId'];

export interface GatewayAggregate {
  /** processor name */
  name: string;
  aggregate: AggregateInfo;
}

export interface CommandGatewayOptions {
  aggregates: () => GatewayAggregate[];
  topic(name: string): { partitions: number; codec: Codec };
  /** created on the first command */
  sender: () => RecordSender;
  /** created on the first wait for a replies topic */
  replies: (topic: string) => ReplyWatcher;
  /** last stable offset of a partition: a reply written after now is at or after it */
  endOffset(topic: string, partition: number): Promise<bigint>;
  now?: () => number;
}

class BadRequest extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.error));
  }
}

const bad = (error: string, extra: Record<string, unknown> = {}, status = 400) => new BadRequest(status, { error, ...extra });

/** The body as JSON; a body over `max` bytes (a chunked one the server could not refuse by its length) is a 413. */
async function readBody(req: IncomingMessage, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw bad(`the body is larger than ${max} bytes (http.maxBodyBytes)`, {}, 413);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw bad('the body is empty: send a JSON object such as {"aggregateId": "user-1", "data": {...}}');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw bad(`the body is not JSON: ${(e as Error).message}`);
  }
}

/** The body's fields, checked one by one, so the answer names every problem at once. */
export function commandFromBody(commandType: string, body: unknown, tenant: boolean, now: number): CommandEnvelope {
  if (!isPlainObject(body)) throw bad(`the body must be a JSON object, got ${describeValue(body)}`);
  const problems: string[] = [];
  const unknown = Object.keys(body).filter((k) => !FIELDS.includes(k));
  if (unknown.length) problems.push(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (allowed: ${FIELDS.join(', ')}; command fields go in "data")`);
  const str = (f: string, required: boolean) => {
    const v = body[f];
    if (v === undefined || v === null) {
      if (required) problems.push(`missing field "${f}"`);
      return undefined;
    }
    if (typeof v !== 'string' || v.length === 0) {
      problems.push(`"${f}" must be a non-empty string, got ${describeValue(v)}`);
      return undefined;
    }
    return v;
  };
  const aggregateId = str('aggregateId', true);
  const commandId = str('commandId', false) ?? randomUUID();
  const userId = str('userId', false);
  const correlationId = str('correlationId', false);
  const tenantId = str('tenantId', tenant);
  if (problems.at(-1) === 'missing field "tenantId"') problems[problems.length - 1] += ' (the aggregate is partitioned by tenant)';
  const data = body.data ?? {};
  if (!isPlainObject(data)) problems.push(`"data" must be an object, got ${describeValue(data)}`);
  const ev = body.expectedVersion;
  // null is refused, not read as "no check": a serialised nullable field must not turn optimistic concurrency off
  if (ev !== undefined && !(Number.isSafeInteger(ev) && (ev as number) >= 0)) {
    problems.push(`"expectedVersion" must be an integer of at least 0 (0: the aggregate does not exist yet; leave it out for no check), got ${describeValue(ev)}`);
  }
  if (problems.length) throw bad(`command ${commandType}: ${problems.join('; ')}`);
  const command: CommandEnvelope = { commandId, commandType, aggregateId: aggregateId!, timestamp: new Date(now).toISOString(), data: data as Record<string, unknown> };
  if (typeof ev === 'number') command.expectedVersion = ev;
  if (userId) command.userId = userId;
  if (correlationId) command.correlationId = correlationId;
  if (tenantId) command.tenantId = tenantId;
  const problem = commandProblem(command);
  if (problem) throw bad(problem);
  return command;
}

/** Which aggregate handles a command type: `?aggregate=`, else the declarative one declaring it, else the only module aggregate. */
export function routeCommand(commandType: string, aggregates: GatewayAggregate[], asked: string | null): GatewayAggregate {
  const known = aggregates.map((a) => ({ processor: a.name, aggregateType: a.aggregate.aggregateType, commands: a.aggregate.commandTypes ?? 'decided by its module' }));
  if (asked !== null) {
    const byName = aggregates.find((a) => a.name === asked);
    const byType = aggregates.filter((a) => a.aggregate.aggregateType === asked);
    const chosen = byName ?? (byType.length === 1 ? byType[0] : undefined);
    if (!chosen) throw bad(`no aggregate processor or aggregateType "${asked}" in this app${byType.length > 1 ? ' that is unique: name the processor' : ''}`, { aggregates: known }, 404);
    const types = chosen.aggregate.commandTypes;
    if (types && !types.includes(commandType)) throw bad(`aggregate "${chosen.name}" handles no command ${commandType}; it handles ${types.join(', ')}`, { aggregates: known });
    return chosen;
  }
  if (aggregates.length === 0) throw bad('this app has no aggregate processor: commands have nowhere to go', {}, 404);
  const declaring = aggregates.filter((a) => a.aggregate.commandTypes?.includes(commandType));
  if (declaring.length === 1) return declaring[0]!;
  if (declaring.length > 1) throw bad(`several aggregates declare command ${commandType}: choose one with ?aggregate=<processor>`, { aggregates: known });
  const modules = aggregates.filter((a) => a.aggregate.commandTypes === undefined);
  if (modules.length === 1) return modules[0]!;
  if (modules.length > 1) throw bad(`no aggregate declares command ${commandType} and several are modules: choose one with ?aggregate=<processor>`, { aggregates: known });
  throw bad(`no aggregate handles command ${commandType}`, { aggregates: known }, 404);
}

function waitParam(q: URLSearchParams): number {
  const raw = q.get('wait');
  if (raw === null || raw === '') return 0;
  if (!/^\d+$/.test(raw) || Number(raw) > MAX_WAIT_MS) throw bad(`wait=${raw}: expected milliseconds from 0 to ${MAX_WAIT_MS}`);
  return Number(raw);
}

export class CommandGateway {
  private maxBodyBytes = 1 << 20;

  constructor(private readonly o: CommandGatewayOptions) {}

  register(http: HttpServer): void {
    this.maxBodyBytes = http.maxBodyBytes;
    http.route('POST', /^\/commands\/([^/]+)\/?$/, (req, res, [type]) => this.handle(req, res, type!), 'command', 'command');
  }

  private async handle(req: IncomingMessage, res: ServerResponse, commandType: string): Promise<void> {
    try {
      await this.accept(req, res, commandType);
    } catch (e) {
      if (!(e instanceof BadRequest)) throw e;
      sendJson(res, e.status, e.body);
    }
  }

  private async accept(req: IncomingMessage, res: ServerResponse, commandType: string): Promise<void> {
    const q = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const wait = waitParam(q);
    const target = routeCommand(commandType, this.o.aggregates(), q.get('aggregate'));
    const a = target.aggregate;
    if (wait > 0 && a.repliesTopic === undefined) throw bad(`aggregate "${target.name}" has no replies topic (output.replies), so there is no reply to wait for: send without ?wait`);
    const command = commandFromBody(commandType, await readBody(req, this.maxBodyBytes), a.tenant, (this.o.now ?? Date.now)());
    const key = aggregateKey(command.aggregateId, a.tenant ? command.tenantId : undefined);
    const commands = this.o.topic(a.commandsTopic);
    const partition = partitionForKey(key, commands.partitions);
    const value = encode(commands.codec, command);
    const written = { commandId: command.commandId, aggregate: target.name, topic: a.commandsTopic, partition };
    if (wait === 0) {
      const offset = await this.o.sender().send({ topic: a.commandsTopic, partition, key: Buffer.from(key, 'utf8'), value });
      sendJson(res, 202, { ...written, offset: offset.toString() });
      return;
    }
    const repliesTopic = a.repliesTopic!;
    const replyPartition = partitionForKey(key, this.o.topic(repliesTopic).partitions);
    // before the command is sent: its reply can only come after this offset
    const from = await this.o.endOffset(repliesTopic, replyPartition);
    await this.o.sender().send({ topic: a.commandsTopic, partition, key: Buffer.from(key, 'utf8'), value });
    const reply = await this.o.replies(repliesTopic).wait(key, command.commandId, replyPartition, from, wait);
    if (reply) {
      sendJson(res, 200, reply);
      return;
    }
    sendJson(res, 504, {
      error: `no reply within ${wait} ms; the command was written and may still be handled: retry with the same commandId, which gets the original reply and never runs twice`,
      ...written,
    });
  }
}
