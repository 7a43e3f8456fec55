import type { Command } from 'commander';
import { registerSchema } from './schema.ts';
import { registerValidate } from './validate.ts';

export function registerCommands(program: Command): void {
  registerValidate(program);
  registerSchema(program);
}
