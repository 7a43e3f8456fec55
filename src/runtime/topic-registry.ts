/** Declared and internal topics by alias or name: where forward() sends, with which codec and partition count. */
import { FoldstreamError } from '../errors.ts';
import { internalTopics } from '../topology/names.ts';
import type { Codec, Topology } from '../topology/schema.ts';

export interface TopicInfo {
  alias: string | undefined;
  name: string;
  partitions: number;
  codec: Codec;
}

export class TopicRegistry {
  private readonly byKey = new Map<string, TopicInfo>();

  constructor(topology: Topology) {
    for (const [alias, d] of Object.entries(topology.topics)) {
      const info = { alias, name: d.name, partitions: d.partitions, codec: d.codec };
      this.byKey.set(alias, info);
      if (!this.byKey.has(d.name)) this.byKey.set(d.name, info);
    }
    for (const it of internalTopics(topology)) {
      // dead letters keep the original bytes; changelogs hold msgpack store values; repartition records are JSON
      const codec: Codec = it.purpose === 'dlq' ? 'raw' : it.purpose === 'changelog' ? 'msgpack' : 'json';
      if (!this.byKey.has(it.name)) this.byKey.set(it.name, { alias: undefined, name: it.name, partitions: it.partitions, codec });
    }
  }

  find(aliasOrName: string): TopicInfo | undefined {
    return this.byKey.get(aliasOrName);
  }

  get(aliasOrName: string): TopicInfo {
    const t = this.byKey.get(aliasOrName);
    if (!t) {
      throw new FoldstreamError('OUTPUT_UNDECLARED', `topic "${aliasOrName}" is not declared in the topology`, {
        hint: 'declare it under topics: and list its alias in the processor outputs',
      });
    }
    return t;
  }
}
