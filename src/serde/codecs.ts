/** Value codecs of topics: json (default), msgpack, string, raw (Buffer as is). */
import { isUtf8 } from 'node:buffer';
import type { Codec } from '../topology/schema.ts';
import { pack, unpack } from './msgpack.ts';

export class DecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DecodeError';
  }
}

export function encode(codec: Codec, value: unknown): Buffer | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  switch (codec) {
    case 'json':
      return Buffer.from(JSON.stringify(value), 'utf8');
    case 'msgpack':
      return pack(value);
    case 'string':
      return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
    case 'raw':
      throw new TypeError('a topic with codec raw takes Buffer values');
  }
}

/** Decodes a record value; throws DecodeError with the reason when the bytes are not valid for the codec. */
export function decode(codec: Codec, bytes: Buffer | null): unknown {
  if (bytes === null) return null;
  switch (codec) {
    case 'json': {
      // checked on the bytes: decoding, encoding again and comparing costs twice the work (invalid bytes would
      // become U+FFFD silently otherwise)
      if (!isUtf8(bytes)) throw new DecodeError('value is not valid UTF-8');
      try {
        return JSON.parse(bytes.toString('utf8'));
      } catch (e) {
        throw new DecodeError(`value is not JSON: ${(e as Error).message}`, { cause: e });
      }
    }
    case 'msgpack':
      try {
        return unpack(bytes);
      } catch (e) {
        throw new DecodeError(`value is not msgpack: ${(e as Error).message}`, { cause: e });
      }
    case 'string':
      return bytes.toString('utf8');
    case 'raw':
      return bytes;
  }
}
