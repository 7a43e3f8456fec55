/**
 * The time arithmetic of each window kind (docs/windows.md), pure: which windows a record time falls in, when a
 * window closes (stream time passed it by the grace period: it takes no more records and, with `emit: close`, its
 * result goes out), when it expires (deleted from the store, retentionMs after it ended), and when a record is late.
 *
 * Time windows (tumbling, hopping) are [start, end) with end = start + sizeMs, starts aligned to the epoch, as in
 * Kafka Streams. A sliding window [end - timeDifferenceMs, end] ends at each record's time and holds the records of
 * its key within it (both ends included). A session [start, end] spans the first and last record of a run of records
 * of its key at most gapMs apart (both ends included).
 */
import type { WindowSpecDecl } from '../../topology/schema.ts';

export interface WindowSpan {
  start: number;
  end: number;
}

export interface WindowKind {
  readonly kind: WindowSpecDecl['kind'];
  readonly graceMs: number;
  readonly retentionMs: number;
  /** the time a window's key sorts by: its start, for sliding windows its end (every record has one) */
  position(w: WindowSpan): number;
  /** stream time at which a window closes */
  closeAt(w: WindowSpan): number;
  /** stream time at which a window is deleted */
  expireAt(w: WindowSpan): number;
  /** whether a record at `time` is late at stream time `streamTime` (it adds to no window) */
  late(time: number, streamTime: number): boolean;
  /** longest span of a window, to bound range scans; undefined: unbounded (sessions) */
  maxLengthMs: number | undefined;
  /** windows a record at most creates (what a sweep per record must keep up with) */
  windowsPerRecord: number;
}

/** Time windows that contain `time`, oldest first: tumbling (advance = size) and hopping. Starts are never negative. */
export function timeWindowsFor(time: number, sizeMs: number, advanceMs: number): WindowSpan[] {
  const last = Math.floor(time / advanceMs) * advanceMs;
  const out: WindowSpan[] = [];
  for (let start = Math.max(0, last - Math.floor((sizeMs - 1) / advanceMs) * advanceMs); start <= last; start += advanceMs) {
    if (start + sizeMs > time) out.push({ start, end: start + sizeMs });
  }
  return out;
}

export function windowKind(w: WindowSpecDecl): WindowKind {
  const graceMs = w.graceMs;
  const retentionMs = w.retentionMs ?? w.graceMs;
  switch (w.kind) {
    case 'tumbling':
    case 'hopping': {
      const size = w.sizeMs;
      const advance = w.kind === 'hopping' ? w.advanceMs : w.sizeMs;
      return {
        kind: w.kind,
        graceMs,
        retentionMs,
        position: (x) => x.start,
        closeAt: (x) => x.end + graceMs,
        expireAt: (x) => x.end + retentionMs,
        // late when even the newest window holding it has closed
        late: (time, streamTime) => Math.floor(time / advance) * advance + size + graceMs <= streamTime,
        maxLengthMs: size,
        windowsPerRecord: Math.ceil(size / advance),
      };
    }
    case 'sliding':
      return {
        kind: w.kind,
        graceMs,
        retentionMs,
        position: (x) => x.end,
        closeAt: (x) => x.end + 1 + graceMs,
        expireAt: (x) => x.end + 1 + retentionMs,
        late: (time, streamTime) => time + 1 + graceMs <= streamTime,
        maxLengthMs: w.timeDifferenceMs,
        windowsPerRecord: 2,
      };
    case 'session': {
      const gap = w.gapMs;
      return {
        kind: w.kind,
        graceMs,
        retentionMs,
        position: (x) => x.start,
        // no record that is not late can join it any more: one at time t >= streamTime - grace is more than gap after it
        closeAt: (x) => x.end + gap + 1 + graceMs,
        expireAt: (x) => x.end + gap + 1 + retentionMs,
        late: (time, streamTime) => time + 1 + graceMs <= streamTime,
        maxLengthMs: undefined,
        windowsPerRecord: 1,
      };
    }
  }
}
