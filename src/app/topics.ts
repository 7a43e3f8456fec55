/**
 * `foldstream topics`: a topology's topic plan checked against, or created on, its cluster. The wiring of Kafka for
 * this offline command lives here in app/, so cli/ only parses and prints. Nothing is created while an existing
 * topic would damage data (an events topic compacted or deleting old events, a changelog not compacted, a partition
 * count that differs): that is fixed first.
 */
import { checkTopics, createTopics } from '../kafka/admin.ts';
import { brokerList, createKafka, type KafkaClient } from '../kafka/client.ts';
import type { LoadedTopology } from '../topology/load.ts';
import { isDamagingDrift, planTopics, type DriftReport, type PlannedTopic, type TopicDrift } from '../topology/topic-plan.ts';

export interface TopicsTarget {
  plan: PlannedTopic[];
  brokers: string[];
}

export type CreateOutcome =
  | { kind: 'refused'; damaging: TopicDrift[] }
  | { kind: 'created'; created: PlannedTopic[]; existing: number; report: DriftReport };

/** Drifts of topics that exist and would damage data: fix these before anything is created. */
export async function damagingExisting(kafka: KafkaClient, plan: readonly PlannedTopic[]): Promise<TopicDrift[]> {
  return (await checkTopics(kafka, plan)).drifts.filter((d) => d.kind !== 'missing' && isDamagingDrift(plan, d));
}

export class TopologyTopics {
  private readonly kafka: KafkaClient;
  readonly target: TopicsTarget;

  constructor(loaded: LoadedTopology) {
    const t = loaded.topology;
    this.kafka = createKafka(t, { baseDir: loaded.baseDir, clientIdSuffix: '-topics' });
    this.target = { plan: planTopics(t), brokers: brokerList(t.kafka.brokers) };
  }

  check(): Promise<DriftReport> {
    return checkTopics(this.kafka, this.target.plan);
  }

  async create(): Promise<CreateOutcome> {
    const { plan } = this.target;
    const damaging = await damagingExisting(this.kafka, plan);
    if (damaging.length) return { kind: 'refused', damaging };
    const { created } = await createTopics(this.kafka, plan);
    const names = new Set(created);
    return { kind: 'created', created: plan.filter((p) => names.has(p.name)), existing: plan.length - created.length, report: await this.check() };
  }
}
