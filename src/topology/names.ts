/**
 * Names derived from the app and processor names (DESIGN §1, §4). Everything that talks to Kafka takes names from
 * here, so a newcomer can see the whole scheme in one place and `foldstream describe` prints the same.
 */
import type { ProcessorDecl, Topology } from './schema.ts';

export const groupId = (app: string, processor: string) => `${app}-${processor}`;
export const transactionalId = (app: string, processor: string, partition: number) => `${app}-${processor}-${partition}`;
export const changelogTopic = (app: string, processor: string, store: string) => `${app}-${processor}-${store}-changelog`;
export const dlqTopic = (app: string, processor: string) => `${app}-${processor}-dlq`;
export const repartitionTopic = (app: string, processor: string) => `${app}-${processor}-repartition`;

/** Stores a processor kind keeps for itself, besides the ones it declares. */
export function builtInStores(p: ProcessorDecl): string[] {
  switch (p.type) {
    case 'aggregate':
      return p.history ? ['state', 'commands', 'history'] : ['state', 'commands'];
    case 'projection':
      return ['view'];
    case 'custom':
      return [];
  }
}

export function storesOf(t: Topology, p: ProcessorDecl): { name: string; changelog: boolean; cacheSize: number }[] {
  const declared = p.type === 'custom' ? p.stores : [];
  return [
    ...builtInStores(p).map((name) => ({ name, changelog: true, cacheSize: t.processing.cacheSize })),
    ...declared.map((name) => {
      const decl = t.stores[name];
      return { name, changelog: decl?.changelog ?? true, cacheSize: decl?.cacheSize ?? t.processing.cacheSize };
    }),
  ];
}

export function inputsOf(p: ProcessorDecl): string[] {
  return Array.isArray(p.input) ? p.input : [p.input];
}

export type InternalTopicPurpose = 'changelog' | 'dlq' | 'repartition';

export interface InternalTopic {
  name: string;
  processor: string;
  purpose: InternalTopicPurpose;
  store?: string;
  partitions: number;
  replicationFactor: number;
  config: Record<string, string>;
}

/** Changelogs, dead-letter and repartition topics of every processor, sized like the processor's input. */
export function internalTopics(t: Topology): InternalTopic[] {
  const out: InternalTopic[] = [];
  for (const p of t.processors) {
    if (!p) continue;
    const first = t.topics[inputsOf(p)[0]!];
    const partitions = first?.partitions ?? 1;
    const replicationFactor = first?.replicationFactor ?? 1;
    const minIsr = replicationFactor >= 3 ? { 'min.insync.replicas': '2' } : {};
    for (const s of storesOf(t, p)) {
      if (!s.changelog) continue;
      out.push({
        name: changelogTopic(t.app, p.name, s.name),
        processor: p.name,
        purpose: 'changelog',
        store: s.name,
        partitions,
        replicationFactor,
        config: { 'cleanup.policy': 'compact', ...minIsr },
      });
    }
    out.push({
      name: dlqTopic(t.app, p.name),
      processor: p.name,
      purpose: 'dlq',
      partitions,
      replicationFactor,
      config: { 'retention.ms': '-1', ...minIsr },
    });
    if (p.type === 'projection' && p.groupBy) {
      out.push({
        name: repartitionTopic(t.app, p.name),
        processor: p.name,
        purpose: 'repartition',
        partitions,
        replicationFactor,
        config: { ...minIsr },
      });
    }
  }
  return out;
}
