/**
 * The counting workload (`type: custom`, test/chaos/app/counter.ts): ticks per key in, {key, n, seq} out, a count per
 * key in store `counts`. Works with today's runtime. The verifier's model is test/chaos/verify/model-counter.ts.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BAD_KIND_HEADER, json, spoil, type BadKind } from '../corpus.ts';
import type { Rng } from '../rng.ts';
import { processingYaml, topicYaml, type GenRecord, type TopologyParams, type Workload } from './workload.ts';

const MODULE = fileURLToPath(new URL('../app/counter.ts', import.meta.url));

export const counterTopics = (app: string) => ({ input: `${app}-input`, output: `${app}-counts` });

export const counterWorkload: Workload = {
  name: 'counter',
  inputTopics: (app) => [{ alias: 'input', name: counterTopics(app).input, config: {} }],
  processors: (app) => [{ processor: 'counter', inputs: [counterTopics(app).input] }],
  topologyYaml(p: TopologyParams): string {
    const t = counterTopics(p.app);
    return `app: ${p.app}
kafka: { brokers: "${p.brokers.join(',')}", clientId: ${p.app} }
${processingYaml(p)}http: { port: 0, host: 127.0.0.1 }
modules: { root: "${dirname(MODULE)}" }
topics:
${topicYaml('input', t.input, p)}${topicYaml('counts', t.output, p)}stores:
  counts: {}
processors:
  - name: counter
    type: custom
    input: input
    module: "${MODULE}"
    stores: [counts]
    outputs: [counts]
`;
  },
  source(rng: Rng, opts) {
    const seqs = new Map<string, number>();
    const keyName = (i: number) => `k-${String(i).padStart(6, '0')}`;
    const anyKey = () => keyName(rng.int(opts.keys));
    return {
      good(): GenRecord {
        const key = anyKey();
        const seq = (seqs.get(key) ?? 0) + 1;
        seqs.set(key, seq);
        return { topic: 'input', key, value: json({ type: 'Tick', v: 1, key, seq }) };
      },
      bad(kind: BadKind): GenRecord {
        const key = anyKey();
        const tick = { type: 'Tick', v: 1, key, seq: 1 };
        const { key: k, value } = spoil(
          kind,
          {
            key,
            value: tick,
            wrongFieldTypes: { ...tick, seq: String(tick.seq) },
            missingFields: { type: 'Tick', v: 1, key },
            unknownType: { ...tick, type: 'Tock' },
            tooNewVersion: { ...tick, v: 2 },
            keyMismatch: { key, value: { ...tick, key: `${key}-other` } },
            fields: { hugeNumber: 'seq', deeplyNested: 'key', invalidUtf8: 'key' },
          },
          rng,
          opts.maxRecordBytes,
        );
        return { topic: 'input', key: k, value, ...(k === null ? { partition: rng.int(1 << 30) } : {}), headers: { [BAD_KIND_HEADER]: kind } };
      },
    };
  },
};
