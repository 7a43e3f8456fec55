// Changelog records as restore reads them: data, tombstones, the position marker, other reserved keys; and how two
// positions combine (per topic the higher offset, the later stream time).
import test from 'ava';
import { dataRecord, decodeChangelogRecord, laterPosition, MARKER_HEADER, POSITION_KEY, positionRecord } from '../../src/state/changelog.ts';
import type { TaskPosition } from '../../src/state/committed-store.ts';
import { decodeValue, encodeValue } from '../../src/state/value-codec.ts';

test('a data record decodes to its UTF-8 key and its value bytes', (t) => {
  const value = encodeValue({ n: 3 });
  const d = decodeChangelogRecord(Buffer.from('user-ü-😀', 'utf8'), value);
  t.deepEqual(d, { kind: 'data', key: 'user-ü-😀', value });
  const r = dataRecord('user-ü-😀', value);
  t.deepEqual(decodeChangelogRecord(r.key, r.value), d, 'dataRecord round-trips');
});

test('a tombstone decodes to a delete of its key', (t) => {
  t.deepEqual(decodeChangelogRecord(Buffer.from('gone'), null), { kind: 'data', key: 'gone', value: null });
  const r = dataRecord('gone', null);
  t.deepEqual(decodeChangelogRecord(r.key, r.value), { kind: 'data', key: 'gone', value: null });
});

test('the position marker decodes to the task position it carries', (t) => {
  const position: TaskPosition = { offsets: { input: '12345678901234567', other: '0' }, streamTime: 1_764_000_000_000 };
  const r = positionRecord(position);
  t.is(r.key.toString('utf8'), POSITION_KEY);
  t.true(POSITION_KEY.startsWith('\u0000'), 'the marker key cannot collide with a store key');
  t.deepEqual(r.headers, { [MARKER_HEADER]: 'position' });
  t.deepEqual(decodeValue(r.value!), position, 'plain msgpack, readable by any msgpack library');
  t.deepEqual(decodeChangelogRecord(r.key, r.value), { kind: 'position', position });
});

test('a position marker without a value (compacted away as a tombstone) is skipped', (t) => {
  t.is(decodeChangelogRecord(Buffer.from(POSITION_KEY, 'utf8'), null), undefined);
});

test('other reserved keys and null keys are skipped, never applied as data', (t) => {
  t.is(decodeChangelogRecord(Buffer.from('\u0000future-marker', 'utf8'), encodeValue(1)), undefined);
  t.is(decodeChangelogRecord(Buffer.from('\u0000', 'utf8'), encodeValue(1)), undefined);
  t.is(decodeChangelogRecord(null, encodeValue(1)), undefined);
  // a NUL that is not the first character is an ordinary key
  t.like(decodeChangelogRecord(Buffer.from('a\u0000b', 'utf8'), encodeValue(1)), { kind: 'data', key: 'a\u0000b' });
});

test('laterPosition takes per topic the higher offset, compared as 64-bit numbers, and keeps topics only one side has', (t) => {
  const a: TaskPosition = { offsets: { x: '9', y: '100', onlyA: '5' }, streamTime: 10 };
  const b: TaskPosition = { offsets: { x: '10', y: '99', onlyB: '7' }, streamTime: 5 };
  const expected = { offsets: { x: '10', y: '100', onlyA: '5', onlyB: '7' }, streamTime: 10 };
  t.deepEqual(laterPosition(a, b), expected);
  t.deepEqual(laterPosition(b, a), expected, 'symmetric');
  // beyond 2^53 a Number comparison would call these equal
  const lower: TaskPosition = { offsets: { x: '9007199254740992' }, streamTime: -1 };
  const higher: TaskPosition = { offsets: { x: '9007199254740993' }, streamTime: -1 };
  t.is(laterPosition(lower, higher)?.offsets.x, '9007199254740993');
  t.is(laterPosition(higher, lower)?.offsets.x, '9007199254740993');
});

test('laterPosition takes the later stream time, whichever side has it', (t) => {
  t.is(laterPosition({ offsets: { x: '1' }, streamTime: 500 }, { offsets: { x: '2' }, streamTime: 900 })?.streamTime, 900);
  t.is(laterPosition({ offsets: { x: '2' }, streamTime: 900 }, { offsets: { x: '1' }, streamTime: 500 })?.streamTime, 900);
  t.is(laterPosition({ offsets: {}, streamTime: -1 }, { offsets: {}, streamTime: 7 })?.streamTime, 7);
});

test('laterPosition with one side missing returns the other, and with none returns undefined', (t) => {
  const p: TaskPosition = { offsets: { x: '3' }, streamTime: 4 };
  t.deepEqual(laterPosition(p, undefined), p);
  t.deepEqual(laterPosition(undefined, p), p);
  t.is(laterPosition(undefined, undefined), undefined);
});

test('laterPosition does not change its arguments', (t) => {
  const a: TaskPosition = { offsets: { x: '1' }, streamTime: 1 };
  const b: TaskPosition = { offsets: { x: '2', y: '3' }, streamTime: 2 };
  laterPosition(a, b);
  t.deepEqual(a, { offsets: { x: '1' }, streamTime: 1 });
  t.deepEqual(b, { offsets: { x: '2', y: '3' }, streamTime: 2 });
});
