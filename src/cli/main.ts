#!/usr/bin/env node
/** foldstream command line: each command lives in its own file under commands/. */
import { Command } from 'commander';
import { redactSecrets } from '../secrets.ts';
import { registerCommands } from './commands/index.ts';

// No secret of the topology (src/secrets.ts) reaches the terminal, whatever a command or a library prints.
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) =>
    write(typeof chunk === 'string' ? redactSecrets(chunk) : Buffer.isBuffer(chunk) ? redactSecrets(chunk.toString('utf8')) : chunk, ...rest)) as typeof stream.write;
}

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
