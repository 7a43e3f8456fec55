// npm run kafka:start | kafka:stop | kafka:status  (options: --nodes 3 --port 9092 --version 4.4.0 --fresh)
// --secured --port N: a one-node broker with TLS, SASL, mutual TLS and ACLs of its own (secure.ts, docs/security.md)
// `ensure` (used by npm test and npm start): start a local broker only when nothing answers at KAFKA_BROKERS.
// Without --port every command uses the port of the first address in KAFKA_BROKERS (default 127.0.0.1:9092).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cacheDir, describeCluster, pidOf, portAnswers, startCluster, stopCluster, type Cluster, type ClusterOptions } from './cluster.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: 'string' },
    port: { type: 'string' },
    version: { type: 'string' },
    heap: { type: 'string' },
    fresh: { type: 'boolean' },
    secured: { type: 'boolean' },
  },
});

// KAFKA_BROKERS picks the port for every command (not only ensure), so `stop` finds the broker `npm test` started
const first = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')[0]!.trim();
const [host, port] = [first.slice(0, first.lastIndexOf(':')), Number(first.slice(first.lastIndexOf(':') + 1))];

const opts: ClusterOptions = {};
if (values.nodes) opts.nodes = Number(values.nodes);
opts.basePort = values.port ? Number(values.port) : port;
if (values.version) opts.version = values.version;
if (values.heap) opts.heap = values.heap;
if (values.fresh) opts.fresh = true;
if (values.secured) opts.secured = true;

const command = positionals[0] ?? 'status';
const c = describeCluster(opts);

switch (command) {
  case 'start': {
    const { cluster, started } = await startCluster(opts);
    console.error(`${started ? 'started' : 'reusing'} Kafka ${cluster.version} at ${cluster.brokers.join(',')} (data and logs: ${cluster.dir})`);
    if (cluster.secured) {
      const l = cluster.secured;
      console.error(`secured listeners: SASL_SSL 127.0.0.1:${l.saslSslPort}, mutual TLS 127.0.0.1:${l.mtlsPort}, ` +
        `SASL_PLAINTEXT (admin) 127.0.0.1:${l.internalPort}; CA ${l.caFile}, client certificate ${l.clientCertFile} and key ` +
        `${l.clientKeyFile}; users and passwords in ${l.secretsFile}`);
    }
    break;
  }
  case 'ensure': {
    if (await portAnswers(port, host === 'localhost' ? '127.0.0.1' : host)) {
      console.error(`Kafka answers at ${first}; using it`);
      break;
    }
    if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
      console.error(`nothing answers at KAFKA_BROKERS=${process.env.KAFKA_BROKERS}, and it is not a local address to start a broker on`);
      process.exit(1);
    }
    const { cluster } = await startCluster(opts);
    console.error(`started Kafka ${cluster.version} at ${cluster.brokers.join(',')} (logs: ${cluster.dir}); stop it with npm run kafka:stop`);
    break;
  }
  case 'stop': {
    // Without --nodes or --version: every cluster of this port that is running (a three-broker one too).
    const running = (x: Cluster) => Array.from({ length: x.nodes }, (_, i) => pidOf(x, i + 1)).some(Boolean);
    const targets = values.nodes || values.version || values.secured ? [c] : clustersAt(opts.basePort!).filter(running);
    for (const x of targets) {
      const was = running(x);
      await stopCluster(x);
      console.error(was ? `stopped ${x.name}` : `${x.name} was not running`);
    }
    if (!targets.length) console.error(`no Kafka started by foldstream is running at port ${opts.basePort}`);
    break;
  }
  case 'status':
    for (let id = 1; id <= c.nodes; id++) console.log(`node ${id}: ${pidOf(c, id) ? `running (pid ${pidOf(c, id)})` : 'stopped'}`);
    break;
  default:
    console.error(`unknown command ${command}; use start, stop, status or ensure`);
    process.exit(2);
}

/** The clusters whose first broker listens on `port`, of any version and node count (named kafka-<v>-p<port>-n<nodes>). */
function clustersAt(port: number): Cluster[] {
  const root = join(cacheDir(), 'clusters');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((name) => {
    const m = /^kafka-(.+)-p(\d+)-n(\d+)(-secured)?$/.exec(name);
    return m && Number(m[2]) === port ? [describeCluster({ ...opts, name, version: m[1]!, nodes: Number(m[3]), secured: Boolean(m[4]) })] : [];
  });
}
