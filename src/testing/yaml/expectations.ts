/**
 * The `then:` of a YAML case against what the driver saw. Outputs, replies and dead letters are those written by the
 * `when` steps (from a mark); stores are their contents at the end. Each failure names the path of the expectation
 * (so the report can give its file:line:col) and carries a diff.
 */
import { errorMessage } from '../../errors.ts';
import type { PathSegment } from '../../topology/load.ts';
import { timestampMs, type DeadLettersExpectation, type RecordsExpectation, type Then } from '../../topology/tests-schema.ts';
import type { DeadLetter, OutputRecord } from '../dead-letters.ts';
import { diff, equal, matches, mismatches, projectOnto, render } from '../diff.ts';
import type { TopologyTestDriver } from '../topology-test-driver.ts';

export interface Failure {
  /** path of the failing expectation within the case, e.g. ['then', 'outputs', 'events', 'count'] */
  path: PathSegment[];
  message: string;
  detail?: string;
}

/** A record as expectations name its fields; dead letters add code and message, and their value is the original. */
type Shaped = Record<string, unknown> & { headers: Record<string, string> };

const shape = (r: OutputRecord): Shaped => ({ key: r.key, value: r.value, headers: r.headers, partition: r.partition, timestamp: r.timestamp });
const shapeDeadLetter = (r: DeadLetter): Shaped => ({ ...shape(r), value: r.original, code: r.code, message: r.message });

type Expected = Record<string, unknown>;

const iso = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toISOString() : ms);

/** Of an expected record, the fields it names, as they print best (timestamps as ISO). */
const normalise = (e: Expected): Expected =>
  Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined).map(([k, v]) => [k, k === 'timestamp' ? iso(timestampMs(v as number | string)) : v]));

function fieldMatches(actual: Shaped, field: string, expected: unknown, exact: boolean): boolean {
  if (field === 'headers') return matches(actual.headers, expected);
  if (field === 'timestamp') return actual.timestamp === timestampMs(expected as number | string);
  if (field === 'value') return exact ? equal(actual.value, expected) : matches(actual.value, expected);
  return equal(actual[field], expected);
}

const recordMatches = (actual: Shaped, e: Expected, exact: boolean) =>
  Object.entries(e).every(([f, v]) => v === undefined || fieldMatches(actual, f, v, exact));

/** The actual record cut down to the fields the expectation names. */
function projectRecord(actual: Shaped, e: Expected, exact: boolean): Expected {
  return Object.fromEntries(
    Object.keys(normalise(e)).map((f) => {
      if (f === 'timestamp') return [f, iso(actual.timestamp)];
      if (f === 'headers' || (f === 'value' && !exact)) return [f, projectOnto(actual[f], e[f])];
      return [f, actual[f]];
    }),
  );
}

const summary = (records: Shaped[]) => {
  if (records.length === 0) return '(none)';
  const lines = render(records.slice(0, 10).map((r) => ({ key: r.key, value: r.value, ...('code' in r ? { code: r.code } : {}) })));
  return [...lines, ...(records.length > 10 ? [`... and ${records.length - 10} more`] : [])].join('\n');
};

function checkRecords(actual: Shaped[], exp: RecordsExpectation | DeadLettersExpectation, what: string, path: PathSegment[]): Failure[] {
  const failures: Failure[] = [];
  if (exp.count !== undefined && actual.length !== exp.count) {
    failures.push({ path: [...path, 'count'], message: `expected ${exp.count} ${what}, got ${actual.length}`, detail: summary(actual) });
  }
  if (exp.equal) {
    const want = exp.equal as Expected[];
    const ok = want.length === actual.length && want.every((e, i) => recordMatches(actual[i]!, e, true));
    if (!ok) {
      // records beyond the expected ones are shown whole (key and value), so an extra one is easy to see
      const got = actual.map((a, i) => (want[i] ? projectRecord(a, want[i], true) : { key: a.key, value: a.value }));
      failures.push({ path: [...path, 'equal'], message: `the ${what} differ`, detail: diff(want.map(normalise), got) });
    }
  }
  const used = new Set<number>();
  for (const [i, e] of ((exp.contains ?? []) as Expected[]).entries()) {
    const found = actual.findIndex((a, k) => !used.has(k) && recordMatches(a, e, false));
    if (found >= 0) {
      used.add(found);
      continue;
    }
    const p = [...path, 'contains', i];
    if (actual.length === 0) {
      failures.push({ path: p, message: `no ${what} at all, so none matches`, detail: render(normalise(e)).join('\n') });
      continue;
    }
    const closest = actual.reduce((best, a) => (mismatches(a, e) < mismatches(best, e) ? a : best));
    const message = actual.length === 1 ? `the only one of the ${what} does not match` : `none of the ${actual.length} ${what} matches; the closest`;
    failures.push({ path: p, message, detail: diff(normalise(e), projectRecord(closest, e, false)) });
  }
  return failures;
}

export async function checkThen(d: TopologyTestDriver, then: Then, since: number): Promise<Failure[]> {
  const failures: Failure[] = [];
  for (const [topic, exp] of Object.entries(then.outputs ?? {})) {
    failures.push(...checkRecords(d.output(topic, { since }).map(shape), exp, `records on ${topic}`, ['then', 'outputs', topic]));
  }
  for (const [processor, exp] of Object.entries(then.deadLetters ?? {})) {
    failures.push(...checkRecords(d.deadLetters(processor, { since }).map(shapeDeadLetter), exp, `dead letters of ${processor}`, ['then', 'deadLetters', processor]));
  }
  for (const [commandId, exp] of Object.entries(then.replies ?? {})) {
    const path = ['then', 'replies', commandId];
    const replies = d.replies(commandId, { since });
    if (replies.length === 0) {
      failures.push({ path, message: `no reply to command ${commandId} during when`, detail: whyNoReply(d, commandId, since) });
      continue;
    }
    for (const [i, r] of replies.entries()) {
      if (matches(r, exp)) continue;
      const which = replies.length > 1 ? ` (reply ${i + 1} of ${replies.length})` : '';
      failures.push({ path, message: `the reply to ${commandId} differs${which}`, detail: diff(exp, projectOnto(r, exp)) });
    }
  }
  for (const [processor, byStore] of Object.entries(then.stores ?? {})) {
    for (const [store, byKey] of Object.entries(byStore)) {
      const contents = await d.store(processor, store);
      for (const [key, exp] of Object.entries(byKey)) {
        const path = ['then', 'stores', processor, store, key];
        const v = contents.get(key);
        if (matches(v, exp)) continue;
        if (v === undefined) {
          const keys = [...contents.keys()];
          const some = keys.length ? `; it has ${keys.slice(0, 10).map((k) => JSON.stringify(k)).join(', ')}${keys.length > 10 ? ', ...' : ''}` : '; it is empty';
          failures.push({ path, message: `${processor}.${store} has no key ${JSON.stringify(key)}${some}` });
        } else {
          failures.push({ path, message: `${processor}.${store}[${JSON.stringify(key)}] differs`, detail: diff(exp, exp === null ? v : projectOnto(v, exp)) });
        }
      }
    }
  }
  for (const [i, exp] of (then.stateAt ?? []).entries()) {
    const path = ['then', 'stateAt', i];
    const at = timestampMs(exp.at);
    const what = `${exp.aggregate} ${JSON.stringify(exp.tenantId === undefined ? exp.aggregateId : `${exp.tenantId}:${exp.aggregateId}`)} as of ${new Date(at).toISOString()}`;
    let r: Awaited<ReturnType<TopologyTestDriver['stateAt']>>;
    try {
      r = await d.stateAt(exp.aggregate, exp.aggregateId, at, exp.tenantId === undefined ? {} : { tenantId: exp.tenantId });
    } catch (e) {
      failures.push({ path, message: `${what}: ${errorMessage(e)}` });
      continue;
    }
    const later = r.laterEvents ? ` (${r.laterEvents} later event${r.laterEvents === 1 ? '' : 's'} not applied)` : '';
    if (exp.version !== undefined && r.version !== exp.version) {
      failures.push({ path: [...path, 'version'], message: `${what} is at version ${r.version}, not ${exp.version}${later}` });
    }
    if (exp.state !== undefined) {
      const state = r.version === 0 ? null : r.state;
      if (!matches(state, exp.state)) {
        failures.push({ path: [...path, 'state'], message: `the state of ${what} differs${later}`, detail: diff(exp.state, exp.state === null ? state : projectOnto(state, exp.state)) });
      }
    }
  }
  return failures;
}

/** A command without a reply was usually dead-lettered: say so, with the code and message. */
function whyNoReply(d: TopologyTestDriver, commandId: string, since: number): string {
  for (const p of d.processors) {
    const dl = d.deadLetters(p, { since }).find((l) => typeof l.original === 'object' && l.original !== null && (l.original as { commandId?: unknown }).commandId === commandId);
    if (dl) return `it went to the dead-letter topic of ${p} as ${dl.code}: ${dl.message}`;
  }
  return 'and no dead letter holds a command with this commandId: did a when step send it?';
}
