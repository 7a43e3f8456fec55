#!/usr/bin/env node
/** foldstream command line: each command lives in its own file under commands/. */
import { Command } from 'commander';
import { registerCommands } from './commands/index.ts';

const program = new Command();
program
  .name('foldstream')
  .description('Kafka Streams-style stream processor for event sourcing and CQRS, exactly once')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: false });
registerCommands(program);
await program.parseAsync(process.argv);
