import type { Command } from 'commander';
import { registerDescribe } from './describe.ts';
import { registerDlq } from './dlq.ts';
import { registerGraph } from './graph.ts';
import { registerLeaveGroup } from './leave-group.ts';
import { registerReplay } from './replay.ts';
import { registerRebuild } from './rebuild.ts';
import { registerReset } from './reset.ts';
import { registerRetire } from './retire.ts';
import { registerRun } from './run.ts';
import { registerSchema } from './schema.ts';
import { registerStateAt } from './state-at.ts';
import { registerTest } from './test.ts';
import { registerTopics } from './topics.ts';
import { registerValidate } from './validate.ts';

export function registerCommands(program: Command): void {
  registerRun(program);
  registerValidate(program);
  registerDescribe(program);
  registerGraph(program);
  registerTest(program);
  registerTopics(program);
  registerReset(program);
  registerLeaveGroup(program);
  registerRebuild(program);
  registerRetire(program);
  registerStateAt(program);
  registerDlq(program);
  registerReplay(program);
  registerSchema(program);
}
