// The local broker's KRaft cluster id must never start with '-': Kafka's storage tool would read it as an option and
// refuse to format ("argument --cluster-id/-t: expected one argument"), which failed a CI run on a fresh machine.
import test from 'ava';
import { newClusterId } from '../../scripts/kafka/cluster.ts';

test('a cluster id whose base64url would start with "-" is drawn again', (t) => {
  // 0xf8 = 111110.. : the first base64url character is '-' (62)
  const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x41)];
  const id = newClusterId(() => draws.shift()!);
  t.is(draws.length, 0, 'two ids starting with "-" were skipped');
  t.false(id.startsWith('-'));
  t.is(Buffer.from(id, 'base64url').length, 16);
});

test('random cluster ids are 22 base64url characters and none starts with "-"', (t) => {
  const ids = Array.from({ length: 2000 }, () => newClusterId());
  t.true(ids.every((id) => /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/.test(id)));
  t.is(new Set(ids).size, ids.length);
});
