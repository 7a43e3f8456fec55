import type { Command } from 'commander';
import { topologyJsonSchema } from '../../topology/schema.ts';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of topology.yaml (for editor validation and completion)')
    .action(() => {
      console.log(JSON.stringify(topologyJsonSchema(), null, 2));
    });
}
