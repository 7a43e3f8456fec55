/**
 * The read_committed consumer on a run's outputs that measures end-to-end latency: an output's visibility time (when
 * this consumer receives it) minus its input's timestamp (when the load generator handed the input to its client).
 * An output is matched to its input by id — a view by key and `foldstream.view.version` header (or, for a system
 * that writes no header, by its position among the key's views), a reply by commandId — so an output that matches
 * no outstanding input is a duplicate, and an input left without an output at the end is missing.
 */
import type { Consumer } from 'kafkajs';
import type { Broker } from './kafka.ts';
import type { RunTopics } from './systems.ts';
import type { WorkloadName } from './workload.ts';

export interface Seen {
  partition: number;
  offset: number;
  seenAt: number;
  /** when its input was sent; undefined for a duplicate */
  sentAt: number | undefined;
}

export class Observer {
  /** outputs of the primary topic (views, or replies), in arrival order */
  readonly seen: Seen[] = [];
  readonly counts = new Map<string, number>();
  duplicates = 0;
  private consumer: Consumer | undefined;
  private readonly primary: string;
  private readonly perKey = new Map<string, number>();
  /** id → send times not yet matched by an output */
  private readonly pending = new Map<string, number[]>();
  private waiting = 0;

  constructor(
    private readonly broker: Broker,
    private readonly workload: WorkloadName,
    private readonly topics: RunTopics,
    private readonly groupId: string,
  ) {
    this.primary = workload === 'projection' ? topics.view! : topics.replies!;
  }

  /** The load generator tells it every input it sends. */
  sent(id: string, at: number): void {
    const q = this.pending.get(id);
    if (q) q.push(at);
    else this.pending.set(id, [at]);
    this.waiting++;
  }

  /** inputs sent that have no output yet */
  get missing(): number {
    return this.waiting;
  }

  async start(): Promise<void> {
    const consumer = this.broker.kafka.consumer({ groupId: this.groupId, readUncommitted: false, maxWaitTimeInMs: 50, sessionTimeout: 30_000 });
    this.consumer = consumer;
    await consumer.connect();
    const outputs = this.workload === 'projection' ? [this.topics.view!] : [this.topics.replies!, this.topics.events!];
    for (const topic of outputs) await consumer.subscribe({ topic, fromBeginning: true });
    const joined = new Promise<void>((r) => consumer.on(consumer.events.GROUP_JOIN, () => r()));
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const seenAt = Date.now();
        this.counts.set(batch.topic, (this.counts.get(batch.topic) ?? 0) + batch.messages.length);
        if (batch.topic !== this.primary) return;
        for (const m of batch.messages) {
          const id = this.idOf(m.key?.toString() ?? '', m.value, m.headers?.['foldstream.view.version']);
          const q = id === undefined ? undefined : this.pending.get(id);
          const sentAt = q?.shift();
          if (sentAt === undefined) this.duplicates++;
          else this.waiting--;
          this.seen.push({ partition: batch.partition, offset: Number(m.offset), seenAt, sentAt });
        }
      },
    });
    await joined;
  }

  private idOf(key: string, value: Buffer | null, versionHeader: Buffer | string | (Buffer | string)[] | undefined): string | undefined {
    if (this.workload === 'projection') {
      const n = (this.perKey.get(key) ?? 0) + 1;
      this.perKey.set(key, n);
      return `${key}:${versionHeader === undefined ? n : String(versionHeader)}`;
    }
    try {
      return (JSON.parse(value?.toString() ?? 'null') as { commandId?: string } | null)?.commandId;
    } catch {
      return undefined;
    }
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.consumer = undefined;
  }
}
