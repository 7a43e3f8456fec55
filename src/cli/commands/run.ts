import type { Command } from 'commander';
import { App } from '../../app/app.ts';
import { FoldstreamError } from '../../errors.ts';
import { createLogger } from '../../log.ts';
import { loadTopologyOrExit } from '../load-or-exit.ts';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run every processor of the topology until SIGTERM or SIGINT, then drain and exit 0')
    .argument('<file>', 'topology.yaml')
    .option('--state-dir <dir>', 'override processing.stateDir')
    .option('--http-port <port>', 'override http.port (0: any free port)', (v) => Number(v))
    .option('--no-create-topics', 'do not create missing topics; fail instead')
    .action(async (file: string, opts: { stateDir?: string; httpPort?: number; createTopics: boolean }) => {
      const loaded = loadTopologyOrExit(file);
      const log = createLogger({ app: loaded.topology.app });
      const app = new App(loaded, {
        log,
        ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
        ...(opts.httpPort !== undefined ? { httpPort: opts.httpPort } : {}),
        createTopics: opts.createTopics,
      });
      let stopping: Promise<void> | undefined;
      const shutdown = (signal: string) => {
        if (stopping) return;
        log.info({ event: 'signal', signal });
        stopping = app.stop().then(
          () => process.exit(0),
          (e: Error) => {
            log.error({ event: 'app.stop_failed', error: e.message });
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
      try {
        await app.start();
      } catch (e) {
        const message = e instanceof FoldstreamError ? e.describe() : (e as Error).stack ?? String(e);
        log.error({ event: 'app.start_failed', error: message });
        console.error(message);
        process.exit(1);
      }
    });
}
