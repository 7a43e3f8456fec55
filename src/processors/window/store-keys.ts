/**
 * Keys of the window stores (docs/wire-formats.md). A window is `<key>@<position>`, the position (its start; a sliding
 * window's end) zero-padded to 15 digits, so one key's windows are one range scan in time order and a range of times
 * is a range of keys. Another key that starts with this key and '@' shares the prefix: its keys have more than 15
 * digits after it, which `isWindowKeyOf` rejects.
 *
 * Points (a key's records by time, each with an expiry entry in the index) are what a stream–stream join within a
 * time window needs to buffer each side: it can keep them in the same shape and expire them the same way.
 */
import type { RangeOptions } from '../types.ts';
import { timeKey } from '../time-index.ts';

/** Key bounds of a range scan (the store's RangeOptions without prefix, order and limit). */
export type Bounds = Pick<RangeOptions, 'gt' | 'gte' | 'lt' | 'lte'>;

const pad = (t: number) => String(Math.max(0, t)).padStart(15, '0');

export const windowKey = (key: string, position: number) => `${key}@${pad(position)}`;

/** Whether `stored` is a window key of `key` (not of a longer key sharing its prefix). */
export const isWindowKeyOf = (stored: string, key: string) => stored.length === key.length + 16 && /^\d{15}$/.test(stored.slice(key.length + 1));

/** Window keys of `key` with positions from `from` to `to` (both included). */
export const windowBounds = (key: string, from: number, to: number): Bounds => ({ gte: windowKey(key, from), lte: windowKey(key, to) });

/** A record kept for sliding windows: by key and time, then its input position so two records at one time differ. */
export const pointKey = (key: string, time: number, topic: string, offset: string) => `${key}@${pad(time)}@${offset.padStart(20, '0')}@${topic}`;

export const isPointKeyOf = (stored: string, key: string) => /^\d{15}@\d{20}@/.test(stored.slice(key.length + 1)) && stored.startsWith(`${key}@`);

/** Points of `key` with times from `from` to `to` (both included). */
export const pointBounds = (key: string, from: number, to: number): Bounds => ({ gte: `${key}@${pad(from)}@`, lt: `${key}@${pad(to + 1)}@` });

/** In the `window-index` store: the window processor's stream time (the highest record time it has seen). */
export const STREAM_TIME_KEY = 'stream-time';
/** In the `window-index` store: a window to close (emit: close) at a stream time; the value is the window key. */
export const closeKey = (at: number, window: string) => `c:${timeKey(at, window)}`;
export const closeDue = (streamTime: number): Bounds => ({ gte: 'c:', lt: `c:${timeKey(streamTime + 1, '')}` });
/** In the `window-index` store: a window (`w:<key>`) or a point (`p:<key>`) to delete at a stream time. */
export const expiryKey = (at: number, entry: string) => `x:${timeKey(at, entry)}`;
export const expiryDue = (streamTime: number): Bounds => ({ gte: 'x:', lt: `x:${timeKey(streamTime + 1, '')}` });
