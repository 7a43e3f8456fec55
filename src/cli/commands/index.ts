import type { Command } from 'commander';
import { registerDescribe } from './describe.ts';
import { registerGraph } from './graph.ts';
import { registerRun } from './run.ts';
import { registerSchema } from './schema.ts';
import { registerTopics } from './topics.ts';
import { registerValidate } from './validate.ts';

export function registerCommands(program: Command): void {
  registerRun(program);
  registerValidate(program);
  registerDescribe(program);
  registerGraph(program);
  registerTopics(program);
  registerSchema(program);
}
