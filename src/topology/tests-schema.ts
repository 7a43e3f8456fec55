/**
 * YAML test cases (`foldstream test`, docs/testing.md): a `tests:` section of topology.yaml, or a `*.test.yaml` file
 * naming its topology. Each case pipes `given` then `when` steps through the TopologyTestDriver and checks `then`
 * against what the `when` steps caused. Defined once here so validation (file:line:col), the runner's types and the
 * JSON Schema agree.
 */
import { z } from 'zod';

const nonNegativeInt = () => z.number().int().nonnegative();

/** "Expect something" only when the expectation is otherwise valid: after a misspelt key it would be noise. */
const clean = (payload: { issues: unknown[] }) => payload.issues.length === 0;

/** ms since the epoch, or an ISO-8601 string */
export const TimestampSchema = z
  .union([nonNegativeInt(), z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO-8601 time, e.g. 2026-01-01T00:00:00Z')])
  .describe('a time: ms since the epoch, or ISO-8601 such as 2026-01-01T00:00:00Z');

const headers = z.record(z.string(), z.string()).describe('record headers');

const commandFields = z
  .strictObject({
    commandId: z.string().min(1).optional().describe('default: cmd-1, cmd-2, ... in the order commands are piped'),
    commandType: z.string().min(1).describe('e.g. CreateUser'),
    aggregateId: z.string().min(1),
    expectedVersion: nonNegativeInt().optional().describe('the version the sender last saw; 0: must not exist yet'),
    userId: z.string().optional(),
    timestamp: z.string().optional().describe('ISO-8601; default: none (events take the record time)'),
    correlationId: z.string().optional(),
    tenantId: z.string().optional(),
    data: z.record(z.string(), z.unknown()).optional().describe('default {}'),
  })
  .describe('a command envelope; the record key is its aggregateId (tenantId:aggregateId under tenant partitioning)');

const eventFields = z
  .strictObject({
    eventId: z.string().min(1).optional().describe('default: derived from topic, aggregateType, key and aggregateVersion, as aggregates do'),
    eventType: z.string().min(1),
    eventVersion: z.number().int().positive().optional().describe('default 1'),
    aggregateType: z.string().min(1).optional().describe('default: the aggregateType of the aggregate writing the topic'),
    aggregateId: z.string().min(1),
    aggregateVersion: z.number().int().positive().optional().describe("default: one more than the aggregate's last event on the topic"),
    timestamp: z.string().optional().describe("ISO-8601; default: the record's timestamp"),
    userId: z.string().optional(),
    correlationId: z.string().optional(),
    causationId: z.string().optional(),
    tenantId: z.string().optional(),
    data: z.record(z.string(), z.unknown()).optional().describe('default {}'),
  })
  .describe('an event envelope; the record key is its aggregateId (tenantId:aggregateId with a tenantId)');

const ACTIONS = ['value', 'raw', 'command', 'event', 'advanceWallClock', 'advanceStreamTime'] as const;

export const TestStepSchema = z
  .strictObject({
    topic: z.string().min(1).optional().describe('topic alias or name; commands and events default to the aggregate\'s'),
    key: z.string().nullable().optional().describe('record key (null: none); commands and events default to their aggregate key'),
    value: z.unknown().optional().describe('a record value, encoded with the topic codec (null: a tombstone)'),
    raw: z.string().optional().describe('a record value as exact text, e.g. cut-off JSON (instead of value)'),
    command: commandFields.optional(),
    event: eventFields.optional(),
    headers: headers.optional(),
    timestamp: TimestampSchema.optional().describe("record timestamp; default: the driver's wall clock (2026-01-01T00:00:00Z at start)"),
    partition: nonNegativeInt().optional().describe('explicit partition; default: murmur2 of the key, as producers do'),
    advanceWallClock: z.number().int().positive().optional().describe('move the wall clock forward by this many ms; due wall-clock punctuations run'),
    advanceStreamTime: TimestampSchema.optional().describe('move stream time of every task (or of `processor`) to this time; due stream-time punctuations run'),
    processor: z.string().min(1).optional().describe('with advanceStreamTime: only this processor'),
  })
  .superRefine((step, ctx) => {
    const actions = ACTIONS.filter((a) => step[a] !== undefined);
    if (actions.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: actions.length
          ? `a step does one thing; this one has ${actions.join(' and ')}`
          : 'a step needs one of: value or raw (with topic), command, event, advanceWallClock, advanceStreamTime',
      });
    }
    if ((step.value !== undefined || step.raw !== undefined) && step.topic === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a record (value or raw) needs a topic', path: [] });
    }
  })
  .describe('one input: a record, a command, an event, or moving a clock');

const expectedRecord = {
  key: z.string().nullable().optional(),
  value: z.unknown().optional().describe('matches exactly under equal, partially under contains (listed fields only)'),
  headers: headers.optional().describe('headers the record must have (others may be present)'),
  partition: nonNegativeInt().optional(),
  timestamp: TimestampSchema.optional(),
};

export const ExpectedRecordSchema = z.strictObject(expectedRecord).describe('a record; only the fields named are compared');

export const ExpectedDeadLetterSchema = z
  .strictObject({
    ...expectedRecord,
    value: z.unknown().optional().describe('the original value, decoded with the source topic codec (text when it does not decode)'),
    code: z.string().optional().describe('error code, e.g. EVENT_VERSION_UNSUPPORTED'),
    message: z.string().optional().describe('the error message, exactly'),
  })
  .describe('a dead letter; only the fields named are compared');

const recordsExpectation = <T extends z.ZodType>(item: T, what: string) =>
  z
    .strictObject({
      count: nonNegativeInt().optional().describe(`number of ${what}`),
      equal: z.array(item).optional().describe(`exactly these ${what}, in order`),
      contains: z.array(item).optional().describe(`${what} that must be among them (each matched by a different one), in any order`),
    })
    .refine((e) => e.count !== undefined || e.equal !== undefined || e.contains !== undefined, { message: 'expect something: count, equal or contains', when: clean })
    .describe(`${what} written by the when steps`);

export const RecordsExpectationSchema = recordsExpectation(ExpectedRecordSchema, 'records');
export const DeadLettersExpectationSchema = recordsExpectation(ExpectedDeadLetterSchema, 'dead letters');

export const ExpectedStateAtSchema = z
  .strictObject({
    aggregate: z.string().min(1).describe('the aggregate processor'),
    aggregateId: z.string().min(1),
    tenantId: z.string().min(1).optional().describe('under tenant partitioning'),
    at: TimestampSchema.describe('the time: the state after the last event at or before it'),
    version: nonNegativeInt().optional().describe('its version then (0: it had no events by then)'),
    state: z.unknown().optional().describe('its state then (partial match, as under stores; null: it had no events by then)'),
  })
  .refine((e) => e.version !== undefined || e.state !== undefined, { message: 'expect something: version or state', when: clean })
  .describe("an aggregate's state as of a time, rebuilt from its events as `foldstream state-at` does");

export const ThenSchema = z
  .strictObject({
    outputs: z.record(z.string(), RecordsExpectationSchema).optional().describe('per topic (alias or name): records the when steps caused'),
    replies: z
      .record(z.string(), z.record(z.string(), z.unknown()))
      .optional()
      .describe('per commandId: fields every reply to it (during when) must have, e.g. { status: rejected, code: USER_EXISTS }'),
    stores: z
      .record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown())))
      .optional()
      .describe('processor → store → key → value after the case (partial match; null: the key is absent)'),
    deadLetters: z.record(z.string(), DeadLettersExpectationSchema).optional().describe('per processor: dead letters the when steps caused'),
    stateAt: z.array(ExpectedStateAtSchema).optional().describe("aggregates' states as of a time, after the case (no broker needed)"),
  })
  // a case that checks nothing cannot fail
  .refine((t) => Object.values(t).some((v) => v !== undefined && Object.keys(v).length > 0), { message: 'expect something: outputs, replies, stores, deadLetters or stateAt', when: clean })
  .describe('what must hold after the when steps');

export const TestCaseSchema = z
  .strictObject({
    name: z.string().min(1).describe('what the case shows, as a sentence'),
    given: z.array(TestStepSchema).default([]).describe('steps run first; what they write is not what then looks at'),
    when: z.array(TestStepSchema).min(1).describe('the steps under test'),
    then: ThenSchema,
    skip: z.boolean().default(false).describe('do not run this case (reported as skipped)'),
  })
  .describe('a test case run through the TopologyTestDriver: no broker');

export const TestFileSchema = z
  .strictObject({
    $schema: z.string().optional().describe('editor hint; ignored'),
    topology: z.string().min(1).optional().describe('the topology file, relative to this file; default: topology.yaml in the same folder'),
    tests: z.array(TestCaseSchema).min(1).describe('the cases'),
  })
  .describe('a foldstream test file (*.test.yaml)');

export type TestStep = z.infer<typeof TestStepSchema>;
export type TestCase = z.infer<typeof TestCaseSchema>;
export type TestFile = z.infer<typeof TestFileSchema>;
export type Then = z.infer<typeof ThenSchema>;
export type RecordsExpectation = z.infer<typeof RecordsExpectationSchema>;
export type DeadLettersExpectation = z.infer<typeof DeadLettersExpectationSchema>;
export type ExpectedRecord = z.infer<typeof ExpectedRecordSchema>;
export type Timestamp = z.infer<typeof TimestampSchema>;

export function timestampMs(t: Timestamp): number {
  return typeof t === 'number' ? t : Date.parse(t);
}
