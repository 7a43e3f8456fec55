/**
 * `foldstream graph`: the topology as a diagram, in mermaid (renders in GitHub and most markdown viewers) or
 * Graphviz dot. Topics and processors are nodes; records flow input → processor → output. Internal topics
 * (changelogs, dead-letter, repartition) are drawn dashed and grey, joined by dashed edges, so the declared data flow
 * stands out.
 */
import { outputsOf } from './describe.ts';
import { inputsOf, internalTopics } from './names.ts';
import type { Topology } from './schema.ts';

export type GraphFormat = 'mermaid' | 'dot';
export const GRAPH_FORMATS: readonly GraphFormat[] = ['mermaid', 'dot'];

type NodeKind = 'topic' | 'internal' | 'processor';

interface GraphNode {
  /** t0, i0, p0: ids stay valid whatever characters topic names contain */
  id: string;
  kind: NodeKind;
  label: string[];
}

interface GraphEdge {
  from: string;
  to: string;
  internal: boolean;
}

interface Graph {
  app: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

function buildGraph(t: Topology): Graph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const topicIds = new Map<string, string>();
  for (const [alias, d] of Object.entries(t.topics)) {
    const id = `t${topicIds.size}`;
    topicIds.set(alias, id);
    nodes.push({ id, kind: 'topic', label: [d.name] });
  }
  const processorIds = new Map<string, string>();
  t.processors.forEach((p, i) => {
    const id = `p${i}`;
    processorIds.set(p.name, id);
    nodes.push({ id, kind: 'processor', label: [p.name, p.type] });
    for (const alias of inputsOf(p)) {
      const from = topicIds.get(alias);
      if (from) edges.push({ from, to: id, internal: false });
    }
    for (const alias of outputsOf(p)) {
      const to = topicIds.get(alias);
      if (to) edges.push({ from: id, to, internal: false });
    }
  });
  internalTopics(t).forEach((it, i) => {
    const id = `i${i}`;
    nodes.push({ id, kind: 'internal', label: [it.name] });
    const processor = processorIds.get(it.processor);
    if (!processor) return;
    edges.push({ from: processor, to: id, internal: true });
    // a repartition topic is written and read back by the same processor, and so is a replay topic (its outcomes)
    if (it.purpose === 'repartition' || it.purpose === 'replay') edges.push({ from: id, to: processor, internal: true });
  });
  return { app: t.app, nodes, edges };
}

const mermaidText = (s: string) => s.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');

export function toMermaid(t: Topology): string {
  const g = buildGraph(t);
  const lines = ['flowchart LR', `  %% foldstream topology of app ${mermaidText(g.app).replace(/\n/g, ' ')}`];
  for (const n of g.nodes) {
    const label = `"${n.label.map(mermaidText).join('<br/>')}"`;
    // [( )] is mermaid's cylinder: a topic; [ ] a box: a processor
    lines.push(n.kind === 'processor' ? `  ${n.id}[${label}]` : `  ${n.id}[(${label})]`);
  }
  for (const e of g.edges) lines.push(`  ${e.from} ${e.internal ? '-.->' : '-->'} ${e.to}`);
  lines.push(
    '  classDef topic fill:#e8f0fe,stroke:#4a6fa5',
    '  classDef internal fill:#f5f5f5,stroke:#999999,stroke-dasharray:4 3,color:#555555',
    '  classDef processor fill:#fff4e0,stroke:#c77d00',
  );
  for (const kind of ['topic', 'internal', 'processor'] as const) {
    const ids = g.nodes.filter((n) => n.kind === kind).map((n) => n.id);
    if (ids.length) lines.push(`  class ${ids.join(',')} ${kind}`);
  }
  return lines.join('\n') + '\n';
}

const dotString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

const DOT_NODE_STYLE: Record<NodeKind, string> = {
  topic: 'shape=cylinder, style=filled, fillcolor="#e8f0fe", color="#4a6fa5"',
  internal: 'shape=cylinder, style="dashed,filled", fillcolor="#f5f5f5", color="#999999", fontcolor="#555555"',
  processor: 'shape=box, style="rounded,filled", fillcolor="#fff4e0", color="#c77d00"',
};

export function toDot(t: Topology): string {
  const g = buildGraph(t);
  const lines = [`digraph ${dotString(g.app)} {`, '  rankdir=LR;', '  node [fontname="Helvetica"];'];
  for (const n of g.nodes) {
    // \n inside a dot string is a line break in the label
    const label = n.label.map((part) => dotString(part).slice(1, -1)).join('\\n');
    lines.push(`  ${n.id} [label="${label}", ${DOT_NODE_STYLE[n.kind]}];`);
  }
  for (const e of g.edges) lines.push(`  ${e.from} -> ${e.to}${e.internal ? ' [style=dashed, color="#999999"]' : ''};`);
  lines.push('}');
  return lines.join('\n') + '\n';
}

export function renderGraph(t: Topology, format: GraphFormat): string {
  return format === 'dot' ? toDot(t) : toMermaid(t);
}
