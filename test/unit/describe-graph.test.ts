// `foldstream describe` and `foldstream graph`: what a topology sets up, in text and as mermaid / dot diagrams.
import test from 'ava';
import { join } from 'node:path';
import { describeTopology } from '../../src/topology/describe.ts';
import { toDot, toMermaid } from '../../src/topology/graph.ts';
import { loadTopology, parseTopology } from '../../src/topology/load.ts';
import type { Topology } from '../../src/topology/schema.ts';
import { FIXTURES, runCli } from '../helpers/cli.ts';

const rich = (): Topology => loadTopology(join(FIXTURES, 'rich.yaml')).topology;

/** The lines of `processor <name> (...)` up to the next blank line, with runs of spaces squeezed. */
function block(text: string, processor: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`processor ${processor} (`));
  if (start < 0) return [];
  const end = lines.indexOf('', start);
  return lines.slice(start, end < 0 ? undefined : end).map((l) => l.trim().replace(/\s{2,}/g, '  '));
}

test('describe shows each processor with its type, inputs, outputs, stores, changelogs and derived names', (t) => {
  const text = describeTopology(rich());
  t.deepEqual(block(text, 'users'), [
    'processor users (aggregate)',
    'aggregate type  User',
    'module  ./modules/noop.ts',
    'inputs  commands → shop-commands (4 partitions)',
    'outputs  events → shop-events (4 partitions)',
    'replies → shop-command-results (4 partitions)',
    'stores  state → changelog shop-users-state-changelog',
    'commands → changelog shop-users-commands-changelog',
    'command-expiry → changelog shop-users-command-expiry-changelog',
    'dead-letter  shop-users-dlq',
    'consumer group  shop-users',
    'transactional id  shop-users-<instanceId> (one per instance)',
    'on error  dlq after 3 retries',
  ]);
  const projection = block(text, 'email-index');
  t.is(projection[0], 'processor email-index (projection)');
  t.true(projection.includes('stores  view → changelog shop-email-index-view-changelog'));
  t.true(projection.includes('repartition  shop-email-index-repartition (by data.email)'));
  t.true(projection.includes('outputs  by-email → shop-users-by-email (4 partitions)'));
  const custom = block(text, 'auditor');
  t.true(custom.includes('stores  seen → changelog shop-auditor-seen-changelog'));
  t.true(custom.includes('scratch → no changelog (local cache)'));
  // a route step's target is an output too
  t.true(custom.includes('outputs  audit → shop-audit (4 partitions)'));
  t.true(custom.includes('steps  route by eventType: UserCreated → audit'));
  // each topic with its role and the configs it is created with: a view topic compacted, an events topic kept forever
  t.regex(text, /^ {2}events +shop-events +4 partitions +rf 1 +json +events \(users\) +cleanup\.policy=delete, retention\.ms=-1, retention\.bytes=-1$/m);
  t.regex(text, /^ {2}by-email +shop-users-by-email +4 partitions +rf 1 +json +views \(email-index\) +cleanup\.policy=compact$/m);
  t.regex(text, /^ {2}commands +shop-commands +4 partitions +rf 1 +json +commands \(users\) +-$/m);
});

test('describe shows the policy a view topic declared without one is created with, and counts one partition in the singular', (t) => {
  const { topology } = parseTopology(
    `app: a
kafka: { brokers: "127.0.0.1:9092" }
topics:
  events: { name: a-events, partitions: 1 }
  view: { name: a-view, partitions: 1 }
processors:
  - { name: v, type: projection, input: events, output: view, on: { X: { delete: true } } }
`,
    'inline.yaml',
    { checkModules: false },
  );
  const text = describeTopology(topology);
  t.regex(text, /^ {2}view +a-view +1 partition +rf 1 +json +views \(v\) +cleanup\.policy=compact$/m);
  t.regex(text, /^ {2}events +a-events +1 partition +rf 1 +json +- +-$/m);
});

test('describe says there are no transactional ids when the guarantee is at_least_once', (t) => {
  const t0 = rich();
  const text = describeTopology({ ...t0, processing: { ...t0.processing, guarantee: 'at_least_once' } });
  t.true(block(text, 'users').includes('transactional id  none (at_least_once)'));
  t.notRegex(text, /shop-users-<partition>/);
});

/** node label → id, from mermaid lines like `t0[("shop-events")]` and `p0["users<br/>aggregate"]`. */
function mermaidNodes(text: string): Map<string, string> {
  const nodes = new Map<string, string>();
  for (const m of text.matchAll(/^ {2}(\w+)\[\(?"([^"]*)"\)?\]$/gm)) nodes.set(m[2]!.split('<br/>')[0]!, m[1]!);
  return nodes;
}

test('mermaid: a flowchart LR with topics and processors as nodes and edges input → processor → output', (t) => {
  const text = toMermaid(rich());
  const lines = text.trimEnd().split('\n');
  t.is(lines[0], 'flowchart LR');
  // syntax basics: every line is a node, an edge, a comment or a class statement
  for (const line of lines.slice(1)) {
    t.regex(line, /^ {2}(\w+\[\("[^"]*"\)\]|\w+\["[^"]*"\]|\w+ (-->|-\.->) \w+|%%.*|classDef \w+ .+|class [\w,]+ \w+)$/, line);
  }
  const id = mermaidNodes(text);
  const edge = (from: string, to: string, arrow = '-->') => t.true(lines.includes(`  ${id.get(from)} ${arrow} ${id.get(to)}`), `${from} ${arrow} ${to}`);
  edge('shop-commands', 'users');
  edge('users', 'shop-events');
  edge('users', 'shop-command-results');
  edge('shop-events', 'email-index');
  edge('email-index', 'shop-users-by-email');
  edge('shop-events', 'auditor');
  edge('auditor', 'shop-audit');
  // internal topics hang off their processor with dotted edges and their own style
  edge('users', 'shop-users-state-changelog', '-.->');
  edge('auditor', 'shop-auditor-dlq', '-.->');
  edge('email-index', 'shop-email-index-repartition', '-.->');
  edge('shop-email-index-repartition', 'email-index', '-.->');
  edge('shop-email-index-replay', 'email-index', '-.->');
  t.true(text.includes(`["users<br/>aggregate"]`));
  const internalClass = lines.find((l) => l.startsWith('  class ') && l.endsWith(' internal'));
  t.deepEqual(
    internalClass?.slice('  class '.length, -' internal'.length).split(',').sort(),
    [
      'shop-users-state-changelog',
      'shop-users-commands-changelog',
      'shop-users-command-expiry-changelog',
      'shop-users-dlq',
      'shop-email-index-view-changelog',
      'shop-email-index-dlq',
      'shop-email-index-replay',
      'shop-email-index-repartition',
      'shop-email-index-group-groups-changelog',
      'shop-email-index-group-dlq',
      'shop-auditor-seen-changelog',
      'shop-auditor-dlq',
    ]
      .map((n) => id.get(n)!)
      .sort(),
  );
  t.regex(text, /classDef internal .*stroke-dasharray/);
});

test('dot: a digraph with the same nodes and edges, internal topics dashed', (t) => {
  const text = toDot(rich());
  const lines = text.trimEnd().split('\n');
  t.is(lines[0], 'digraph "shop" {');
  t.is(lines.at(-1), '}');
  for (const line of lines.slice(1, -1)) t.regex(line, /^ {2}.*;$/, `statement ends with ;: ${line}`);
  const id = new Map<string, string>();
  for (const m of text.matchAll(/^ {2}(\w+) \[label="((?:[^"\\]|\\.)*)"/gm)) id.set(m[2]!, m[1]!);
  t.true(lines.includes(`  ${id.get('shop-commands')} -> ${id.get('users\\naggregate')};`));
  t.true(lines.includes(`  ${id.get('users\\naggregate')} -> ${id.get('shop-events')};`));
  t.true(lines.includes(`  ${id.get('auditor\\ncustom')} -> ${id.get('shop-audit')};`));
  t.true(lines.includes(`  ${id.get('users\\naggregate')} -> ${id.get('shop-users-dlq')} [style=dashed, color="#999999"];`));
  const node = (label: string) => lines.find((l) => l.startsWith(`  ${id.get(label)} [`)) ?? '';
  t.regex(node('shop-users-dlq'), /shape=cylinder, style="dashed,filled"/);
  t.regex(node('shop-events'), /shape=cylinder, style=filled/);
  t.regex(node('users\\naggregate'), /shape=box/);
});

test('quotes and angle brackets in names cannot break either syntax', (t) => {
  const yaml = `app: odd
kafka: { brokers: "127.0.0.1:9092" }
topics:
  in: { name: 'say "hi" <now>', partitions: 1 }
processors:
  - { name: p, type: projection, input: in, output: in, on: { X: { delete: true } } }
`;
  const { topology } = parseTopology(yaml, 'odd.yaml', { checkModules: false });
  t.true(toMermaid(topology).includes('[("say #quot;hi#quot; #lt;now#gt;")]'));
  t.true(toDot(topology).includes('[label="say \\"hi\\" <now>", shape=cylinder'));
});

test('the CLI prints describe and graph output, takes --format dot, and exits 1 on an invalid file', async (t) => {
  const file = join(FIXTURES, 'rich.yaml');
  const [described, mermaid, dot, invalid, badFormat] = await Promise.all([
    runCli(['describe', file]),
    runCli(['graph', file]),
    runCli(['graph', file, '--format', 'dot']),
    runCli(['graph', join(FIXTURES, 'mistakes.yaml')]),
    runCli(['graph', file, '--format', 'svg']),
  ]);
  t.is(described.code, 0, described.stderr);
  t.is(described.stdout, describeTopology(rich()));
  t.is(mermaid.code, 0, mermaid.stderr);
  t.is(mermaid.stdout, toMermaid(rich()), 'mermaid is the default format');
  t.is(dot.code, 0, dot.stderr);
  t.is(dot.stdout, toDot(rich()));
  t.is(invalid.code, 1);
  t.regex(invalid.stderr, /mistakes\.yaml:16:12 /);
  t.is(invalid.stdout, '');
  t.is(badFormat.code, 1);
  t.regex(badFormat.stderr, /Allowed choices are mermaid, dot/);
});
