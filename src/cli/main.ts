#!/usr/bin/env node
/** foldstream command line: each command lives in its own file under commands/. */
import { Command } from 'commander';
import { registerCommands } from './commands/index.ts';

// `foldstream ... | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command();
program
  .name('foldstream')
  .description('Kafka Streams-style stream processor for event sourcing and CQRS, exactly once')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: false });
registerCommands(program);
await program.parseAsync(process.argv);
