// deploy/kubernetes/ against the Kubernetes JSON schemas (kubernetes-models: validators generated from the Kubernetes
// OpenAPI schema, and from the Prometheus Operator's CRDs for the ServiceMonitor), and against each other and the
// image: the probes, the grace period, the Secret's keys, the headless Service, the state volume at the image's
// STATE_DIR, and the ConfigMap's topology, which must be a valid topology whose module is the repository's
// examples/users/user.ts as is. No cluster runs here: these manifests were never applied (docs/container.md).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { loadTopology } from '../../src/topology/load.ts';
import { ROOT } from '../helpers/cli.ts';

const DIR = join(ROOT, 'deploy/kubernetes');
type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> } } & Record<string, any>;

function docs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Obj;
  });
}

const models: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1/StatefulSet': StatefulSet,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

const kustomization = docs('kustomization.yaml')[0]!;
const files = [...(kustomization.resources as string[]), 'secret.example.yaml'];
const all = files.flatMap((f) => docs(f).map((o) => ({ file: f, o })));
const one = (kind: string) => all.find((x) => x.o.kind === kind)!.o;

test('every manifest validates against the schema of its kind', (t) => {
  t.deepEqual(
    files.filter((f) => !existsSync(join(DIR, f))),
    [],
    'kustomization.yaml lists files that exist',
  );
  t.deepEqual(all.map((x) => x.o.kind).sort(), ['ConfigMap', 'Secret', 'Service', 'ServiceMonitor', 'StatefulSet']);
  for (const { file, o } of all) {
    const Model = models[`${o.apiVersion}/${o.kind}`];
    if (!Model) {
      t.fail(`${file}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    t.notThrows(() => new Model(o).validate(), `${file}: ${o.kind} ${o.metadata.name}`);
  }
});

test('the schemas catch a broken manifest (the validation is not a no-op)', (t) => {
  const sts = structuredClone(one('StatefulSet'));
  sts.spec.template.spec.containers[0].ports[0].containerPort = 'http';
  t.throws(() => new models['apps/v1/StatefulSet']!(sts).validate(), { message: /containerPort must be integer/ });
  const svc = structuredClone(one('Service'));
  delete svc.spec.ports[0].port;
  t.throws(() => new models['v1/Service']!(svc).validate(), { message: /port/ });
  const sm = structuredClone(one('ServiceMonitor'));
  sm.spec.endpoints[0].authorization.credentials = 'token';
  t.throws(() => new models['monitoring.coreos.com/v1/ServiceMonitor']!(sm).validate(), { message: /credentials/ });
});

test('the StatefulSet: one volume claim per pod at the image STATE_DIR, probes, grace period above the drain, headless Service', (t) => {
  const sts = one('StatefulSet');
  const svc = one('Service');
  const pod = sts.spec.template.spec;
  const c = pod.containers[0];
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stateDir = /STATE_DIR=(\S+)/.exec(dockerfile)![1]!;
  const claim = sts.spec.volumeClaimTemplates[0];
  t.is(c.volumeMounts.find((m: { name: string }) => m.name === claim.metadata.name)?.mountPath, stateDir, 'the claim is mounted at the STATE_DIR the image sets');
  t.deepEqual(claim.spec.accessModes, ['ReadWriteOnce']);
  t.like(c.livenessProbe, { httpGet: { path: '/healthz', port: 'http' } });
  t.like(c.readinessProbe, { httpGet: { path: '/readyz', port: 'http' } });
  // the drain waits at most for one commit (requestTimeoutMs, 30 s by default) before the clients close
  t.true(pod.terminationGracePeriodSeconds > 30);
  t.is(svc.spec.clusterIP, 'None', 'headless: per-pod DNS names');
  t.is(sts.spec.serviceName, svc.metadata.name);
  t.deepEqual(svc.spec.selector, sts.spec.selector.matchLabels);
  t.like(sts.spec.template.metadata.labels, sts.spec.selector.matchLabels);
  t.is(c.ports[0].containerPort, 9464);
  t.is(svc.spec.ports[0].targetPort, c.ports[0].name);
  t.like(sts.spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9464', 'prometheus.io/path': '/metrics' });
  t.is(pod.securityContext.runAsUser, 1000, 'the image user node');
  t.true(c.securityContext.readOnlyRootFilesystem);
  t.true(c.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/tmp'), 'a writable /tmp under a read-only root (tsx compile cache)');
  const sm = one('ServiceMonitor');
  t.deepEqual(sm.spec.selector.matchLabels, svc.metadata.labels);
  t.is(sm.spec.endpoints[0].port, svc.spec.ports[0].name);
});

test('secrets come from the Secret, by keys it has', (t) => {
  const secret = one('Secret');
  const keys = Object.keys(secret.stringData);
  const c = one('StatefulSet').spec.template.spec.containers[0];
  const refs = (c.env as { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]).flatMap((e) => (e.valueFrom?.secretKeyRef ? [{ env: e.name, ...e.valueFrom.secretKeyRef }] : []));
  t.deepEqual(refs.map((r) => r.env).sort(), ['FOLDSTREAM_HTTP_TOKEN', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_USERNAME']);
  for (const r of refs) {
    t.is(r.name, secret.metadata.name);
    t.true(keys.includes(r.key), `${r.env}: key ${r.key} is in the Secret`);
  }
  const sm = one('ServiceMonitor').spec.endpoints[0].authorization.credentials;
  t.is(sm.name, secret.metadata.name);
  t.true(keys.includes(sm.key));
  t.false((kustomization.resources as string[]).includes('secret.example.yaml'), 'kustomization.yaml applies no Secret with example values');
});

test('the ConfigMap holds a valid topology, reading the variables the StatefulSet sets, and examples/users/user.ts as is', (t) => {
  const cm = one('ConfigMap');
  const sts = one('StatefulSet');
  t.is(cm.data['user.ts'], readFileSync(join(ROOT, 'examples/users/user.ts'), 'utf8'), 'user.ts is the example module, unchanged');
  const volume = sts.spec.template.spec.volumes.find((v: { configMap?: { name: string } }) => v.configMap?.name === cm.metadata.name);
  t.truthy(volume, 'the StatefulSet mounts the ConfigMap');
  const mountPath = sts.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === volume.name).mountPath;
  t.deepEqual(sts.spec.template.spec.containers[0].args, ['run', `${mountPath}/topology.yaml`]);
  // lay the ConfigMap out as the pod sees it and load the topology with the pod's environment
  const dir = mkdtempSync(join(tmpdir(), 'foldstream-k8s-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const item of volume.configMap.items as { key: string; path: string }[]) {
    mkdirSync(dirname(join(dir, item.path)), { recursive: true });
    writeFileSync(join(dir, item.path), cm.data[item.key]);
  }
  const c = sts.spec.template.spec.containers[0];
  const env: Record<string, string> = { STATE_DIR: '/var/lib/foldstream' };
  for (const e of c.env as { name: string; value?: string }[]) env[e.name] = e.value ?? `value-of-${e.name}-from-the-secret`;
  const loaded = loadTopology(join(dir, 'topology.yaml'), { env });
  const topo = loaded.topology;
  t.is(topo.processing.stateDir, '/var/lib/foldstream');
  t.is(topo.http.port, 9464);
  t.is(topo.http.token, env.FOLDSTREAM_HTTP_TOKEN);
  t.is(topo.http.advertisedUrl, 'http://$(POD_NAME).foldstream.$(POD_NAMESPACE).svc:9464', 'Kubernetes expands $(POD_NAME) in the env value before foldstream reads it');
  t.like(topo.kafka.sasl, { username: env.KAFKA_SASL_USERNAME, password: env.KAFKA_SASL_PASSWORD });
  for (const d of Object.values(topo.topics)) t.is(d.replicationFactor, 3, `${d.name} is replicated`);
  // every variable the topology reads is set by the StatefulSet or the image
  const vars = [...cm.data['topology.yaml'].matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
  t.deepEqual(vars.filter((v) => !(v in env)), []);
});
