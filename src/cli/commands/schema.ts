import type { Command } from 'commander';
import { testFileJsonSchema, topologyJsonSchema } from '../../topology/schema.ts';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of topology.yaml (for editor validation and completion)')
    .option('--test-file', 'print the JSON Schema of *.test.yaml files (foldstream test) instead')
    .action((opts: { testFile?: boolean }) => {
      console.log(JSON.stringify(opts.testFile ? testFileJsonSchema() : topologyJsonSchema(), null, 2));
    });
}
