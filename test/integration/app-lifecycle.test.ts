// Starting and stopping an App: stop() while tasks are still initialising leaves no connection behind (a leaked
// socket keeps a container from exiting after SIGTERM).
import test from 'ava';
import { rmSync } from 'node:fs';
import { App } from '../../src/app/app.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { countingApp, produceCounting } from '../helpers/counting-app.ts';
import { BROKERS } from '../helpers/kafka.ts';
import { memoryLogger } from '../helpers/log.ts';

const brokerPorts = new Set(BROKERS.map((b) => Number(b.slice(b.lastIndexOf(':') + 1))));

function openBrokerSockets(): number {
  const handles = (process as unknown as { _getActiveHandles(): { constructor: { name: string }; remotePort?: number; destroyed?: boolean }[] })._getActiveHandles();
  return handles.filter((h) => h.constructor.name === 'Socket' && !h.destroyed && h.remotePort !== undefined && brokerPorts.has(h.remotePort)).length;
}

test('stopping an app while its tasks are still initialising closes every connection to the brokers', async (t) => {
  const c = await countingApp({ partitions: 12 });
  await produceCounting(c.input, 500, 13);
  t.is(openBrokerSockets(), 0);
  for (let round = 0; round < 3; round++) {
    const log = memoryLogger();
    const app = new App(loadTopology(c.file), { log, stateDir: c.stateDir(`s${round}`), httpPort: 0 });
    await app.start();
    // Tasks are initialising now (producers, InitProducerId, restores): stop in the middle of it.
    await new Promise((r) => setTimeout(r, round * 150));
    await app.stop();
    await new Promise((r) => setTimeout(r, 500));
    t.is(openBrokerSockets(), 0, `round ${round}: no socket left open`);
  }
  rmSync(c.dir, { recursive: true, force: true });
  await c.cleanup();
});
