import { Option, type Command } from 'commander';
import { GRAPH_FORMATS, renderGraph, type GraphFormat } from '../../topology/graph.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description(
      'print the topology as a diagram: topics and processors as nodes, records flowing input → processor → output, ' +
        'internal topics (changelog, dead-letter, repartition) dashed. Paste mermaid into markdown, or pipe dot into `dot -Tsvg`',
    )
    .argument('<file>', 'topology.yaml')
    .addOption(new Option('-f, --format <format>', 'diagram language').choices(GRAPH_FORMATS).default('mermaid'))
    .option('--no-check-modules', 'do not check that module files exist')
    .action((file: string, opts: { format: GraphFormat; checkModules: boolean }) => {
      const { topology } = loadTopologyOrExit(file, { checkModules: opts.checkModules });
      process.stdout.write(renderGraph(topology, opts.format));
    });
}
