// npm run kafka:start | kafka:stop | kafka:status  (options: --nodes 3 --port 9092 --version 4.4.0 --fresh)
import { parseArgs } from 'node:util';
import { describeCluster, pidOf, startCluster, stopCluster, type ClusterOptions } from './cluster.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: 'string' },
    port: { type: 'string' },
    version: { type: 'string' },
    heap: { type: 'string' },
    fresh: { type: 'boolean' },
  },
});

const opts: ClusterOptions = {};
if (values.nodes) opts.nodes = Number(values.nodes);
if (values.port) opts.basePort = Number(values.port);
if (values.version) opts.version = values.version;
if (values.heap) opts.heap = values.heap;
if (values.fresh) opts.fresh = true;

const command = positionals[0] ?? 'status';
const c = describeCluster(opts);

switch (command) {
  case 'start': {
    const { cluster, started } = await startCluster(opts);
    console.error(`${started ? 'started' : 'reusing'} Kafka ${cluster.version} at ${cluster.brokers.join(',')} (data and logs: ${cluster.dir})`);
    break;
  }
  case 'stop':
    await stopCluster(c);
    console.error(`stopped ${c.name}`);
    break;
  case 'status':
    for (let id = 1; id <= c.nodes; id++) console.log(`node ${id}: ${pidOf(c, id) ? `running (pid ${pidOf(c, id)})` : 'stopped'}`);
    break;
  default:
    console.error(`unknown command ${command}; use start, stop or status`);
    process.exit(2);
}
