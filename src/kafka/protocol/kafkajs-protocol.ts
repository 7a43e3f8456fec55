/**
 * Requests kafkajs 2.2.4 does not speak, sent over its broker connections: kafkajs's Encoder and Decoder (with their
 * compact-string/array and unsigned-varint helpers for flexible versions) build and read the bodies, and
 * `broker.connectionPool.send({ request, response })` sends them, the way kafkajs sends its own. kafkajs writes
 * request header v1 (client id last), so a flexible request (header v2) starts its body with the header's empty
 * tagged fields; kafkajs reads only the correlation id of a response, so a flexible response (header v1) is decoded
 * from its header's tagged fields on. Used by txn-offset-commit.ts and offset-fetch.ts.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface Encoder {
  writeInt8(v: number): Encoder;
  writeInt16(v: number): Encoder;
  writeInt32(v: number): Encoder;
  writeInt64(v: string | number | bigint): Encoder;
  writeBoolean(v: boolean): Encoder;
  writeUVarInt(v: number): Encoder;
  writeUVarIntString(v: string | null): Encoder;
  writeEncoder(e: Encoder): Encoder;
  size(): number;
  /** the bytes written so far */
  readonly buffer: Buffer;
}

export interface Decoder {
  readInt16(): number;
  readInt32(): number;
  readInt64(): { toString(): string };
  readUVarInt(): number;
  readUVarIntString(): string | null;
  readTaggedFields(): unknown;
}

const EncoderClass = require('kafkajs/src/protocol/encoder.js') as new () => Encoder;
const DecoderClass = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => Decoder;
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error & { type: string; code: number } };

export const newEncoder = (): Encoder => new EncoderClass();
export const newDecoder = (b: Buffer): Decoder => new DecoderClass(b);

/** kafkajs's error for a protocol error code: `type` (its name for the code), numeric `code`, `retriable`. */
export function protocolError(code: number): Error & { type: string; code: number } {
  return createErrorFromCode(code);
}

/** An empty tagged-field section (flexible versions end every structure, and the request header, with one). */
export function writeNoTags(e: Encoder): Encoder {
  return e.writeUVarInt(0);
}

/** A compact array: length + 1 as an unsigned varint, then the items. */
export function writeCompactArray<T>(e: Encoder, items: readonly T[], write: (e: Encoder, item: T) => void): Encoder {
  e.writeUVarInt(items.length + 1);
  for (const item of items) write(e, item);
  return e;
}

export function readCompactArray<T>(d: Decoder, read: (d: Decoder) => T): T[] {
  const n = d.readUVarInt();
  const out: T[] = [];
  for (let i = 1; i < n; i++) out.push(read(d));
  return out;
}

export interface ProtocolRequest<T> {
  request: { apiKey: number; apiVersion: number; apiName: string; encode(): Promise<Encoder> };
  response: { decode(raw: Buffer): Promise<T>; parse(data: T): Promise<T> };
}

/** The parts of kafkajs's Broker this needs. */
interface KafkaJsBrokerInternals {
  versions?: Record<number, { minVersion: number; maxVersion: number }> | null;
  connectionPool: { send<T>(r: ProtocolRequest<T>): Promise<T> };
  disconnect(): Promise<void>;
}

/**
 * Sends `r` to a connected kafkajs broker (one that kafkajs's cluster handed out). Fails before sending when the
 * broker does not support the version; a closed connection disconnects the broker, as kafkajs does for its own.
 */
export async function sendToBroker<T>(broker: unknown, r: ProtocolRequest<T>): Promise<T> {
  const b = broker as KafkaJsBrokerInternals;
  const range = b.versions?.[r.request.apiKey];
  if (range && (r.request.apiVersion < range.minVersion || r.request.apiVersion > range.maxVersion)) {
    throw new Error(`the broker does not support ${r.request.apiName} v${r.request.apiVersion} (it supports v${range.minVersion}-v${range.maxVersion})`);
  }
  try {
    return await b.connectionPool.send(r);
  } catch (e) {
    if ((e as { name?: string }).name === 'KafkaJSConnectionClosedError') await b.disconnect();
    throw e;
  }
}
