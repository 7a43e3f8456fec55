/**
 * The topology schema, defined once: it gives the TypeScript types (z.infer), the validation (with paths that
 * load.ts turns into file:line:col) and the JSON Schema that editors use (`foldstream schema`).
 * Every option has a default where one makes sense and a one-line description.
 */
import { z } from 'zod';
import { TestCaseSchema, TestFileSchema } from './tests-schema.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const name = (what: string) =>
  z.string().regex(NAME, `${what} may contain letters, digits, '.', '_' and '-', and must start with a letter or digit`);

const positiveInt = () => z.number().int().positive();
/** A secret: kept out of every output (docs/security.md); the loader keeps it a string even when it looks like a number. */
const secretText = (what: string) => z.string().describe(`${what}; use \${ENV_VAR} (ENV_VAR_FILE may name a file holding it); never logged`);
const nonNegativeInt = () => z.number().int().nonnegative();

export const KafkaSchema = z
  .strictObject({
    brokers: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe('bootstrap brokers: "host:port,host:port" or a list'),
    clientId: z.string().optional().describe('client id sent to the brokers; defaults to the app name'),
    ssl: z
      .union([
        z.boolean(),
        z.strictObject({
          ca: z.string().optional().describe('path of a PEM file with the CA certificates'),
          cert: z.string().optional().describe('path of a PEM client certificate (mutual TLS)'),
          key: z.string().optional().describe('path of the PEM private key of the client certificate'),
          passphrase: secretText('passphrase of an encrypted client key').optional(),
          rejectUnauthorized: z.boolean().default(true).describe('verify the broker certificate'),
        }),
      ])
      .optional()
      .describe('TLS to the brokers; true for the system CAs'),
    sasl: z
      .discriminatedUnion('mechanism', [
        z.strictObject({
          mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).describe('SASL mechanism'),
          username: z.string().describe('user name; use ${ENV_VAR} so secrets stay out of the file'),
          password: secretText('password'),
        }),
        z.strictObject({
          mechanism: z.literal('oauthbearer').describe('SASL mechanism'),
          tokenEndpoint: z.string().url().describe('OAuth 2 token endpoint: foldstream asks it for tokens with the client-credentials grant'),
          clientId: z.string().min(1).describe('OAuth client id'),
          clientSecret: secretText('OAuth client secret'),
          scope: z.string().optional().describe('scope to ask the token endpoint for (space-separated)'),
        }),
      ])
      .optional()
      .describe('SASL authentication (docs/security.md); never logged'),
    connectionTimeoutMs: positiveInt().default(3000).describe('time to establish a broker connection'),
    requestTimeoutMs: positiveInt().default(30000).describe('time to wait for a broker response'),
  })
  .describe('how to reach the Kafka cluster');

export const RetrySchema = z
  .strictObject({
    attempts: nonNegativeInt().default(3).describe('retries of a throwing handler before the error policy applies'),
    initialBackoffMs: positiveInt().default(100).describe('first retry delay; doubles each retry'),
    maxBackoffMs: positiveInt().default(5000).describe('largest retry delay'),
  })
  .describe('retries of a handler that throws (not a domain error), keeping partition order');

export const StaticMembershipSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('join every processor group with a stable group.instance.id (KIP-345): an instance restarted within the session timeout gets its tasks back with no rebalance (docs/exactly-once.md#static-membership)'),
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,249}$/, 'a group.instance.id: 1 to 249 of A-Z a-z 0-9 . _ -')
      .optional()
      .describe('the group.instance.id of this instance (FOLDSTREAM_INSTANCE_ID overrides it; default: the instance id kept in the state directory). Each instance needs its own'),
    sessionTimeoutMs: positiveInt()
      .default(60000)
      .describe('session timeout of static members, instead of processing.sessionTimeoutMs: a restart must fit in it; a dead instance stops its tasks this long (Kafka Streams recommends a longer one with static membership; at most the broker\'s group.max.session.timeout.ms)'),
    leaveGroupOnShutdown: z
      .boolean()
      .default(false)
      .describe('send a LeaveGroup when the app stops (SIGTERM): its tasks move at once, as for a scale-down; off, a restart within the session timeout keeps them'),
  })
  .describe('static membership of the consumer groups (docs/exactly-once.md#static-membership)');

export const ProcessingSchema = z
  .strictObject({
    guarantee: z
      .enum(['exactly_once', 'at_least_once'])
      .default('exactly_once')
      .describe('exactly_once: transactions per task; at_least_once: no transactions, outputs may repeat after a crash'),
    commitIntervalMs: positiveInt()
      .default(100)
      .describe('longest time a transaction stays open while a fetched batch is processed'),
    maxBufferedRecords: positiveInt()
      .default(1000)
      .describe('records processed in one transaction before it commits'),
    stateDir: z.string().default('./state').describe('folder of the LevelDB state stores, relative to the topology file'),
    cacheSize: nonNegativeInt().default(10000).describe('entries of the LRU read cache in front of each store (0: none)'),
    cacheMaxBytes: nonNegativeInt()
      .default(32 * 1024 * 1024)
      .describe('bytes the read caches of all stores of all tasks hold together, least recently used out first (0: no read cache)'),
    sessionTimeoutMs: positiveInt().default(30000).describe('consumer group session timeout'),
    heartbeatIntervalMs: positiveInt().default(3000).describe('consumer group heartbeat interval'),
    rebalanceTimeoutMs: positiveInt().default(60000).describe('time members have to rejoin during a rebalance'),
    fenceDeadWriters: z
      .boolean()
      .default(true)
      .describe('exactly-once: a new owner of a task fences at once the transactional id of a previous writer whose instance left the group, so its open transaction ends now, not after transactionTimeoutMs'),
    transactionTimeoutMs: positiveInt().default(10000).describe('broker aborts a transaction left open longer than this (exactly-once v2: a runner commits every commitIntervalMs; as Kafka Streams)'),
    stateCleanupDelayMs: nonNegativeInt()
      .default(600000)
      .describe('state of a task this instance no longer owns is deleted after this delay'),
    maxRecordBytes: positiveInt().default(1048576).describe('larger input records go to the dead-letter topic'),
    maxClockSkewMs: nonNegativeInt()
      .default(60000)
      .describe('how far ahead of the wall clock stream time counts for command retention, saga deadlines and ended-instance retention, and output records may be dated: a record dated further ahead moves them only this far, and its outputs are dated at most this far ahead'),
    partitionsConsumedConcurrently: positiveInt().default(4).describe('tasks of one processor that process at once'),
    staticMembership: StaticMembershipSchema.default({ enabled: false, sessionTimeoutMs: 60000, leaveGroupOnShutdown: false }),
    retry: RetrySchema.default({ attempts: 3, initialBackoffMs: 100, maxBackoffMs: 5000 }),
  })
  .describe('processing guarantees, commit cadence and state');

export const ModulesSchema = z
  .strictObject({
    root: z
      .string()
      .min(1)
      .default('.')
      .describe('folder every module path must stay inside, relative to the topology file; ".." or an absolute path widens it'),
  })
  .describe('where the modules the topology names may live (default: the topology\'s own folder)');

export const HttpSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('serve /metrics, /healthz, /readyz, the query API and the command gateway (docs/http-api.md)'),
    port: z.number().int().min(0).max(65535).default(9464).describe('port (0: any free port)'),
    host: z.string().default('0.0.0.0').describe('bind address'),
    advertisedUrl: z
      .string()
      .url()
      .optional()
      .describe('URL clients reach this instance at; the query API names it when another instance is asked for a key this one hosts (default http://<host or hostname>:<port>)'),
    token: secretText('bearer token allowing every scope on every route but /healthz and /readyz').optional(),
    tokens: z
      .array(
        z.strictObject({
          token: secretText('bearer token'),
          scopes: z
            .array(z.enum(['read', 'command', 'metrics']))
            .min(1)
            .describe('read: the query API and histories; command: the command gateway; metrics: /metrics'),
        }),
      )
      .optional()
      .describe('bearer tokens, each with its scopes (docs/security.md); /healthz and /readyz stay open'),
    openMetrics: z.boolean().default(false).describe('serve /metrics without a token even when tokens are set'),
    tls: z
      .strictObject({
        cert: z.string().describe('path of the PEM certificate (chain) of the HTTP port'),
        key: z.string().describe('path of its PEM private key'),
        passphrase: secretText('passphrase of an encrypted key').optional(),
      })
      .optional()
      .describe('serve HTTPS instead of HTTP; paths relative to the topology file'),
    routing: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('forward a query for a partition another instance runs to it, and gather listings from every instance (false: answer 421 and list local partitions only)'),
        timeoutMs: positiveInt().default(5000).describe('how long a forwarded query waits for the owner; then 503'),
        ca: z.string().optional().describe('PEM file of the CAs that sign the other instances\' HTTPS certificates (default: the system CAs); relative to the topology file'),
      })
      .default({ enabled: true, timeoutMs: 5000 })
      .describe('routed queries: any instance answers any query (docs/http-api.md#routing)'),
    maxBodyBytes: positiveInt().default(1048576).describe('largest request body; larger ones get 413'),
    rateLimit: z
      .strictObject({
        requestsPerSecond: positiveInt().describe('sustained requests per second per client address'),
        burst: positiveInt().optional().describe('requests a client may send at once (default: requestsPerSecond)'),
      })
      .optional()
      .describe('per client address; over it a request gets 429 with Retry-After; probes are not limited'),
  })
  .describe('the HTTP port: metrics, probes, the query API and the command gateway');

export const CodecSchema = z.enum(['json', 'msgpack', 'string', 'raw']).describe('how record values are encoded');

export const TopicSchema = z
  .strictObject({
    name: z.string().min(1).describe('topic name on the broker'),
    partitions: positiveInt().default(12).describe('partition count'),
    replicationFactor: positiveInt().default(1).describe('replicas; production: 3 with min.insync.replicas 2'),
    config: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .default({})
      .describe('topic configs, e.g. cleanup.policy: compact'),
    codec: CodecSchema.default('json'),
    acceptFiniteRetention: z
      .boolean()
      .default(false)
      .describe(
        'an events topic only: accept a retention that deletes old events (a declared retention.ms or retention.bytes, or the broker default); ' +
          'state-at, history and rebuilds then work on a truncated event store. Without it an events topic keeps every event (retention -1). Compaction is never allowed',
      ),
  })
  .describe('a topic, referred to by its key (the alias) elsewhere in the file');

export const StoreSchema = z
  .strictObject({
    changelog: z.boolean().default(true).describe('back the store with a compacted changelog topic (false: a cache that may be lost)'),
    cacheSize: nonNegativeInt().optional().describe('entries of its LRU read cache; defaults to processing.cacheSize'),
  })
  .describe('a key-value store; each processor using it gets its own instance per partition');

/** JSONata expression evaluated over the record's envelope (or value). */
const expr = (what: string) => z.string().min(1).describe(`JSONata expression: ${what}`);

export const StepSchema = z
  .union([
    z.strictObject({ filter: expr('keep the record when true') }),
    z.strictObject({
      map: z
        .record(z.string(), expr('new value of the field'))
        .describe('set fields of the value (dotted paths) to expressions over the old value'),
    }),
    z.strictObject({
      route: z
        .strictObject({
          by: expr('routing key, e.g. eventType').default('eventType'),
          to: z.record(z.string(), z.string()).describe('routing key value → topic alias'),
          default: z.string().optional().describe('topic alias for values with no entry; drop them when absent'),
          continue: z.boolean().default(false).describe('also pass routed records on to the processor'),
        })
        .describe('send records to topics by a key (usually the event type)'),
    }),
  ])
  .describe('a stateless step run before the processor: filter, map or route');

export const ErrorPolicySchema = z
  .strictObject({
    policy: z
      .enum(['dlq', 'fail', 'skip'])
      .default('dlq')
      .describe('after retries: dead-letter the record, stop the task, or skip it'),
    retry: RetrySchema.optional(),
  })
  .describe('what happens when processor code throws');

const input = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .describe('topic alias (or aliases) the processor reads; all must have the same partition count');

const common = {
  name: name('a processor name').describe('unique name; the consumer group is <app>-<name>'),
  input,
  steps: z.array(StepSchema).default([]).describe('stateless steps in front of the processor'),
  onError: ErrorPolicySchema.default({ policy: 'dlq' }),
  maxEventVersion: z
    .record(z.string(), positiveInt())
    .default({})
    .describe('newest eventVersion supported per event type (after upcasting); newer events go to the dead-letter topic'),
};

export const CustomProcessorSchema = z
  .strictObject({
    ...common,
    type: z.literal('custom'),
    module: z.string().min(1).describe('.ts or .js module exporting process(record, ctx), and optionally init(ctx) and punctuate(timestamp, ctx)'),
    stores: z.array(z.string()).default([]).describe('names of stores (declared under stores:) the module uses'),
    outputs: z.array(z.string()).default([]).describe('topic aliases the module may forward to'),
    punctuate: z
      .strictObject({
        intervalMs: positiveInt().describe('how often punctuate(timestamp, ctx) runs'),
        type: z.enum(['stream-time', 'wall-clock']).default('wall-clock').describe('which clock drives it'),
      })
      .optional()
      .describe('call the module export punctuate on a schedule, inside the transaction'),
    codec: CodecSchema.optional().describe('overrides the input topics codec'),
  })
  .describe('a module of your own: process(record, ctx)');

const commandRule = z
  .strictObject({
    reject: z
      .array(
        z.strictObject({
          if: expr('over {command, state, version}: reject the command when true'),
          reason: z.string().min(1).describe('reason given in the rejected reply'),
          code: z.string().min(1).default('DOMAIN_REJECTED').describe('code given in the rejected reply'),
        }),
      )
      .default([])
      .describe('rejection rules, checked in order; the first whose `if` is true rejects the command'),
    emit: z
      .array(
        z.strictObject({
          type: z.string().min(1).describe('event type'),
          when: expr('over {command, state, version}: emit the event only when true').optional(),
          data: z
            .record(z.string(), expr('value of the data field (dotted path) over {command, state, version}'))
            .default({})
            .describe('the event data'),
          eventVersion: positiveInt().default(1).describe('eventVersion stamped on the event'),
        }),
      )
      .default([])
      .describe('events emitted when no rejection rule matched (none: accepted with no event)'),
  })
  .describe('a declarative command handler');

export const PartitioningSchema = z
  .union([z.enum(['aggregate', 'tenant']), z.strictObject({ module: z.string().min(1).describe('module exporting partition(key, event, partitions) → number') })])
  .describe('event keys and partitions: aggregate (key aggregateId), tenant (key tenantId:aggregateId), or a partitioner module (key aggregateId)');

export const AggregateProcessorSchema = z
  .strictObject({
    ...common,
    type: z.literal('aggregate'),
    aggregateType: z.string().min(1).describe('aggregateType stamped on emitted events, e.g. User'),
    module: z.string().optional().describe('decider module exporting initialState, decide(command, state), evolve(state, event)'),
    commands: z.record(z.string(), commandRule).optional().describe('declarative handlers per command type (instead of a module)'),
    evolve: z
      .record(z.string(), z.record(z.string(), expr('new value of the state field (dotted path) over {state, event}')))
      .optional()
      .describe('declarative state changes per event type (with `commands:`)'),
    initialState: z.record(z.string(), z.unknown()).optional().describe('state of an aggregate with no events (with `commands:`; default {})'),
    output: z
      .strictObject({
        events: z.string().describe('topic alias for emitted events'),
        replies: z.string().optional().describe('topic alias for command replies'),
      })
      .describe('where events and replies go'),
    history: z.boolean().default(false).describe('keep every event per aggregate and version for audit and state-as-of queries'),
    commandRetentionMs: nonNegativeInt()
      .default(604800000)
      .describe('how long a commandId is remembered, so a retry gets its first reply (by both stream time and the wall clock; 0: forever)'),
    partitioning: PartitioningSchema.default('aggregate'),
  })
  .describe('commands in, events out, with optimistic concurrency');

const projectionRule = z
  .strictObject({
    set: z.record(z.string(), expr('field value over the event envelope ($view: the view before)')).optional().describe('view fields (dotted paths) to set'),
    unset: z.array(z.string()).optional().describe('view fields to remove'),
    increment: z.record(z.string(), z.union([z.number(), expr('amount')])).optional().describe('numeric view fields to add to'),
    append: z.record(z.string(), expr('value appended to an array field')).optional().describe('array view fields to append to'),
    delete: z.boolean().optional().describe('delete the view (tombstone)'),
  })
  .describe('how an event type changes the view');

export const GroupAggregationSchema = z
  .union([z.literal('count'), z.strictObject({ sum: expr('number over the aggregate\'s view') })])
  .describe('count: aggregates in the group; { sum: expr }: sum of the expression over their views');

export const GroupBySchema = z
  .union([
    expr('group key over the aggregate\'s view (shorthand for { key, aggregate: { count: count } })'),
    z.strictObject({
      key: expr('group key over the aggregate\'s view; null or absent leaves the aggregate out of every group'),
      aggregate: z
        .record(z.string(), GroupAggregationSchema)
        .default({ count: 'count' })
        .describe('fields of each group\'s view besides `key`'),
    }),
  ])
  .describe('re-key: the view becomes one per group of aggregates, through an internal repartition topic and a second stage');

export const ProjectionProcessorSchema = z
  .strictObject({
    ...common,
    type: z.literal('projection'),
    output: z.string().describe('topic alias of the view topic (compacted)'),
    on: z.record(z.string(), projectionRule).optional().describe('declarative rules per event type'),
    module: z.string().optional().describe('module exporting project(view, event) → view | null (instead of on:)'),
    groupBy: GroupBySchema.optional(),
    unknownEvents: z.enum(['ignore', 'warn', 'dlq']).default('ignore').describe('what to do with event types that have no rule'),
    inputFormat: z
      .enum(['envelope', 'view'])
      .default('envelope')
      .describe('envelope: event envelopes; view: another projection\'s view topic (chaining), seen as ViewUpdated / ViewDeleted events'),
    replaces: z
      .string()
      .min(1)
      .optional()
      .describe(
        'blue/green rebuild: the projection this one is a new version of. It builds its own view topic and store beside the old one; the query API answers reads of the old name from this one per partition once it has caught up (docs/projections.md#blue-green-rebuild)',
      ),
  })
  .describe('events in, a read model out');

const eventTypes = (what: string) => z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe(what);

const sagaCommand = z
  .strictObject({
    type: z.string().min(1).describe('command type (commandType of the envelope)'),
    to: z.string().optional().describe('topic alias the command goes to; default: the first of output.commands'),
    aggregateId: expr('over {sagaId, start, event, state, reason}: id of the aggregate the command is for'),
    tenantId: expr('over {sagaId, start, event, state, reason}: tenant of the target aggregate (key tenantId:aggregateId)').optional(),
    data: z
      .record(z.string(), expr('value of the data field (dotted path) over {sagaId, start, event, state, reason}'))
      .default({})
      .describe('the command data'),
  })
  .describe('a command the saga sends');

const sagaCommands = z.union([sagaCommand, z.array(sagaCommand).min(1)]);

const sagaEventMatch = z
  .union([
    z.string().min(1),
    z.strictObject({
      type: z.string().min(1).describe('event type'),
      when: expr('over {sagaId, start, event, state}: the event counts only when true, e.g. "event.aggregateId = start.data.sku" (its source)').optional(),
    }),
  ])
  .describe('an event type, or { type, when }: an event type and a condition the event must meet');
const sagaEventMatches = (what: string) => z.union([sagaEventMatch, z.array(sagaEventMatch).min(1)]).describe(what);

export const SagaStepSchema = z
  .strictObject({
    name: name('a step name').describe('step name, in the saga log'),
    send: sagaCommands.describe('command(s) sent when the step begins'),
    completeOn: sagaEventMatches('event type(s) that complete the step, each optionally with a `when` condition'),
    failOn: sagaEventMatches('event type(s) that fail the saga at this step (then completed steps are compensated), each optionally with a `when` condition').optional(),
    compensate: sagaCommands.optional().describe('command(s) that undo the step, sent when a later step fails or this one times out'),
    timeoutMs: positiveInt().optional().describe('the saga fails (timed out) if the step is not complete this long after it began (see deadlines.clock)'),
  })
  .describe('one step of a declarative saga');

export const SagaProcessorSchema = z
  .strictObject({
    ...common,
    type: z.literal('saga'),
    correlate: expr('saga instance id over the event envelope; absent: the record key. Events are re-keyed by it through an internal repartition topic')
      .optional(),
    output: z
      .strictObject({
        commands: z
          .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
          .describe('topic alias (or aliases) commands go to; the first is the default'),
        log: z.string().optional().describe('topic alias of the saga log: SagaStarted, SagaStepCompleted, SagaFailed, SagaTimedOut, SagaCompensated, SagaCompleted'),
      })
      .describe('where commands and the saga log go'),
    module: z
      .string()
      .optional()
      .describe('saga module exporting initialState and handle(state, event, saga), and optionally onDeadline(state, deadline, saga)'),
    startOn: eventTypes('event type(s) that start an instance (with flow:)').optional(),
    flow: z.array(SagaStepSchema).min(1).optional().describe('declarative saga steps, run in order (instead of a module)'),
    onFailure: sagaCommands
      .optional()
      .describe('with flow: command(s) sent when the saga fails, after the compensations ($reason, or `reason`, says why)'),
    endedRetentionMs: nonNegativeInt()
      .default(0)
      .describe('how long (stream time) an ended instance is kept, so that late and repeated events find it ended; then it is deleted (0: kept forever)'),
    deadlines: z
      .strictObject({
        clock: z
          .enum(['wall-clock', 'stream-time'])
          .default('wall-clock')
          .describe('wall-clock: a deadline is due afterMs from when it was set and fires also on a quiet partition; stream-time: afterMs from the record\'s time, fired as record time passes it (replays fire the same)'),
        checkIntervalMs: positiveInt().default(1000).describe('how often due deadlines are looked for'),
      })
      .default({ clock: 'wall-clock', checkIntervalMs: 1000 })
      .describe('which clock deadlines count and fire on'),
  })
  .describe('a process manager: events in, commands out, state per saga instance');

// ---- window processors (issue 20: windowed aggregations; docs/windows.md) ----

const windowCommon = {
  graceMs: nonNegativeInt()
    .default(0)
    .describe('how long (event time) after a window ends a late record is still added to it; later ones are late'),
  retentionMs: nonNegativeInt()
    .optional()
    .describe('how long (event time) after it ends a window stays in the store and queryable; at least graceMs; default graceMs'),
};

export const WindowSpecSchema = z
  .discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('tumbling'),
      sizeMs: positiveInt().describe('window length; windows are [start, start + sizeMs), aligned to the epoch'),
      ...windowCommon,
    }),
    z.strictObject({
      kind: z.literal('hopping'),
      sizeMs: positiveInt().describe('window length; windows are [start, start + sizeMs)'),
      advanceMs: positiveInt().describe('distance between window starts (at most sizeMs), aligned to the epoch'),
      ...windowCommon,
    }),
    z.strictObject({
      kind: z.literal('sliding'),
      timeDifferenceMs: positiveInt().describe('each record ends a window [time - timeDifferenceMs, time] over the records of its key in it'),
      ...windowCommon,
    }),
    z.strictObject({
      kind: z.literal('session'),
      gapMs: positiveInt().describe('inactivity gap: records of a key at most gapMs apart are one session'),
      ...windowCommon,
    }),
  ])
  .describe('the kind of window, its size and how long late records are accepted');

export const WindowAggregationSchema = z
  .union([
    z.literal('count'),
    z.strictObject({ sum: expr('number over the event envelope') }),
    z.strictObject({ min: expr('number over the event envelope') }),
    z.strictObject({ max: expr('number over the event envelope') }),
  ])
  .describe('count: records in the window; { sum | min | max: expr }: of the expression over the records (records where it gives nothing are left out)');

export const WindowProcessorSchema = z
  .strictObject({
    ...common,
    type: z.literal('window'),
    window: WindowSpecSchema,
    eventTypes: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('only events of these types count (absent: every event)'),
    key: expr('window key over the event envelope; absent: the record key. A key other than the record key re-keys through an internal repartition topic')
      .optional(),
    time: z
      .enum(['event', 'record'])
      .default('event')
      .describe("event: the envelope's timestamp (a view's record time with inputFormat view); record: the Kafka record timestamp"),
    aggregate: z
      .record(z.string(), WindowAggregationSchema)
      .optional()
      .describe('fields of each window\'s result (instead of module:)'),
    module: z
      .string()
      .optional()
      .describe('reducer module exporting initial(), add(aggregate, event) and, for session windows, merge(a, b) (instead of aggregate:)'),
    emit: z
      .enum(['update', 'close'])
      .default('update')
      .describe('update: every change of a window goes to output; close: each window once, when stream time passes its end + graceMs'),
    late: z.enum(['drop', 'dlq']).default('drop').describe('late records: dropped and counted, or sent to the dead-letter topic'),
    output: z.string().optional().describe('topic alias window results go to (absent: only the store, queryable over HTTP)'),
    inputFormat: z
      .enum(['envelope', 'view'])
      .default('envelope')
      .describe('envelope: event envelopes; view: a projection\'s view topic, seen as ViewUpdated / ViewDeleted events'),
  })
  .describe('windowed aggregations: count, sum, min, max (or a reducer) per key and time window');

// ---- end of window processors ----

// ---- join processors (issue 20: joins; docs/joins.md) ----

export const JOIN_KINDS = ['stream-table', 'table-table', 'stream-stream', 'foreign-key'] as const;

export const JoinWindowSchema = z
  .strictObject({
    beforeMs: nonNegativeInt().describe('a right record joins a left one at time t when its time is at least t - beforeMs'),
    afterMs: nonNegativeInt().describe('a right record joins a left one at time t when its time is at most t + afterMs'),
    graceMs: nonNegativeInt()
      .default(0)
      .describe('how long (event time) behind the stream time a record still joins; older ones are late'),
  })
  .describe('stream-stream: which times of the two sides join');

export const JoinProcessorSchema = z
  .strictObject({
    ...common,
    type: z.literal('join'),
    kind: z
      .enum(JOIN_KINDS)
      .describe('stream-table: enrich each left event from the right table; table-table: a view that follows both tables; stream-stream: events of both sides within a time window; foreign-key: a left table joined with the right table by foreignKey'),
    right: z.string().min(1).describe('topic alias of the right side (a table: a view topic or any compacted topic; a stream: an events topic)'),
    join: z
      .enum(['inner', 'left', 'outer'])
      .default('inner')
      .describe('inner: only when both sides have a value; left: every left record (or row), right null when it has none; outer (table-table, stream-stream): either side'),
    key: expr('stream-table: the table key a left event joins, over the event envelope; absent: the record key. A key other than the record key re-keys the events through an internal repartition topic')
      .optional(),
    foreignKey: expr('foreign-key: the right table key a left row refers to, over the left row (e.g. customerId)').optional(),
    window: JoinWindowSchema.optional(),
    eventTypes: z
      .strictObject({
        left: z.array(z.string().min(1)).min(1).optional().describe('only these left events join (absent: every one)'),
        right: z.array(z.string().min(1)).min(1).optional().describe('only these right events join (absent: every one)'),
      })
      .optional()
      .describe('stream sides: event types that join; others are ignored and counted'),
    // no defaults here: a kind that takes no time is refused them (checks/join.ts); stream-stream: drop, event
    late: z.enum(['drop', 'dlq']).optional().describe('stream-stream: late records are dropped and counted (default), or sent to the dead-letter topic'),
    time: z
      .enum(['event', 'record'])
      .optional()
      .describe("stream-stream: event (default): the envelope's timestamp; record: the Kafka record timestamp"),
    select: z
      .record(z.string(), expr('a field of the join result, over { key, left, right }'))
      .optional()
      .describe('fields of each join result (absent: { key, left, right })'),
    output: z.string().min(1).describe('topic alias join results go to (a view topic for table-table and foreign-key joins)'),
  })
  .describe('joins a stream or table with another: stream-table, table-table, stream-stream within a window, foreign-key');

// ---- end of join processors ----

export const ProcessorSchema = z.discriminatedUnion('type', [
  CustomProcessorSchema,
  AggregateProcessorSchema,
  ProjectionProcessorSchema,
  SagaProcessorSchema,
  WindowProcessorSchema,
  JoinProcessorSchema,
]);

export const UpcasterSchema = z
  .strictObject({
    eventType: z.string().describe('event type this upcaster lifts'),
    fromVersion: positiveInt().describe('eventVersion it reads'),
    toVersion: positiveInt().describe('eventVersion it produces'),
    rename: z.record(z.string(), z.string()).optional().describe('data field → new name'),
    remove: z.array(z.string()).optional().describe('data fields to drop'),
    defaults: z
      .record(z.string(), expr('value of the data field, over the event as read'))
      .optional()
      .describe('data fields (dotted paths) to set when they are absent'),
    set: z.record(z.string(), expr('value of the data field, over the event as read')).optional().describe('data fields (dotted paths) to set'),
    module: z.string().optional().describe('module exporting upcast(event) → event, instead of the rules above'),
  })
  .describe('lifts an old eventVersion of an event type before processors see it');

export const TopologySchema = z
  .strictObject({
    $schema: z.string().optional().describe('editor hint; ignored'),
    app: name('app').describe('application id: consumer groups, transactional ids and internal topics derive from it'),
    kafka: KafkaSchema,
    processing: ProcessingSchema.default(ProcessingSchema.parse({})),
    http: HttpSchema.default(HttpSchema.parse({})),
    modules: ModulesSchema.default({ root: '.' }),
    topics: z.record(name('a topic alias'), TopicSchema).describe('topics by alias'),
    stores: z.record(name('a store name'), StoreSchema).default({}).describe('stores processors may use'),
    upcasters: z.array(UpcasterSchema).default([]).describe('event upcasters applied before every processor'),
    processors: z.array(ProcessorSchema).min(1).describe('the processors of this app'),
    tests: z
      .array(TestCaseSchema)
      .default([])
      .describe('test cases `foldstream test` runs through the test driver, with no broker (docs/testing.md)'),
  })
  .describe('a foldstream topology');

export type Topology = z.infer<typeof TopologySchema>;
export type TopologyInput = z.input<typeof TopologySchema>;
export type TopicDecl = z.infer<typeof TopicSchema>;
export type StoreDecl = z.infer<typeof StoreSchema>;
export type ProcessorDecl = z.infer<typeof ProcessorSchema>;
export type CustomProcessorDecl = z.infer<typeof CustomProcessorSchema>;
export type AggregateProcessorDecl = z.infer<typeof AggregateProcessorSchema>;
export type ProjectionProcessorDecl = z.infer<typeof ProjectionProcessorSchema>;
export type SagaProcessorDecl = z.infer<typeof SagaProcessorSchema>;
export type SagaStepDecl = z.infer<typeof SagaStepSchema>;
export type WindowProcessorDecl = z.infer<typeof WindowProcessorSchema>;
export type WindowSpecDecl = z.infer<typeof WindowSpecSchema>;
export type WindowAggregationDecl = z.infer<typeof WindowAggregationSchema>;
export type JoinProcessorDecl = z.infer<typeof JoinProcessorSchema>;
export type JoinWindowDecl = z.infer<typeof JoinWindowSchema>;
export type SagaCommandDecl = z.infer<typeof sagaCommand>;
export type SagaEventMatchDecl = z.infer<typeof sagaEventMatch>;
export type GroupByDecl = z.infer<typeof GroupBySchema>;
export type PartitioningDecl = z.infer<typeof PartitioningSchema>;
export type StepDecl = z.infer<typeof StepSchema>;
export type UpcasterDecl = z.infer<typeof UpcasterSchema>;
export type Codec = z.infer<typeof CodecSchema>;
export type RetryDecl = z.infer<typeof RetrySchema>;

// draft-07: what the YAML language server and most editors support fully
const JSON_SCHEMA_OPTIONS = { io: 'input', unrepresentable: 'any', target: 'draft-7' } as const;

/** Top-level keys starting with this are ignored: a place for anchors the file merges elsewhere (`<<: *anchor`). */
export const EXTENSION_PREFIX = 'x-';

export function topologyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(TopologySchema, JSON_SCHEMA_OPTIONS) as Record<string, unknown>;
  return {
    ...schema,
    patternProperties: { [`^${EXTENSION_PREFIX}`]: { description: 'ignored: a place for YAML anchors used elsewhere with merge keys (<<: *anchor)' } },
  };
}

/** The JSON Schema of `*.test.yaml` files (foldstream test). */
export function testFileJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(TestFileSchema, JSON_SCHEMA_OPTIONS) as Record<string, unknown>;
}
