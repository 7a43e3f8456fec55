/** A YAML step as a TopologyTestDriver call. */
import { timestampMs, type TestStep } from '../../topology/tests-schema.ts';
import type { CommandInput, EventInput } from '../envelopes.ts';
import type { EnvelopeOptions, PipeOptions, TopologyTestDriver } from '../topology-test-driver.ts';

export async function runStep(d: TopologyTestDriver, s: TestStep): Promise<void> {
  const opts: PipeOptions = {};
  if (s.headers) opts.headers = s.headers;
  if (s.timestamp !== undefined) opts.timestamp = timestampMs(s.timestamp);
  if (s.partition !== undefined) opts.partition = s.partition;
  const envelope: EnvelopeOptions = { ...opts };
  if (s.topic !== undefined) envelope.topic = s.topic;
  if (s.key !== undefined) envelope.key = s.key;

  // zod leaves absent optional fields absent, which is what these types (exactOptionalPropertyTypes) mean
  if (s.command) await d.pipeCommand(s.command as CommandInput, envelope);
  else if (s.event) await d.pipeEvent(s.event as EventInput, envelope);
  else if (s.advanceWallClock !== undefined) await d.advanceWallClock(s.advanceWallClock);
  else if (s.advanceStreamTime !== undefined) await d.advanceStreamTime(timestampMs(s.advanceStreamTime), s.processor);
  else if (s.raw !== undefined) await d.pipe(s.topic!, s.key ?? null, Buffer.from(s.raw, 'utf8'), { ...opts, raw: true });
  else await d.pipe(s.topic!, s.key ?? null, s.value ?? null, opts);
}
