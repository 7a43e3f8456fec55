/**
 * A secured broker of a test file's own (scripts/kafka/secure.ts: SASL_SSL with PLAIN, SCRAM and OAUTHBEARER, mutual
 * TLS, ACLs), started fresh in `before` and stopped in `after.always`; the test helpers reach it as its super user
 * (useBrokerAuth). Also the OAuth token endpoint the OAUTHBEARER tests use and the ACLs they grant.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import kafkajs from 'kafkajs';
import { describeCluster, harnessClient, portAnswers, startCluster, stopCluster, type Cluster } from '../../scripts/kafka/cluster.ts';
import { securedSecrets, type SecuredLayout, type SecuredSecrets } from '../../scripts/kafka/secure.ts';
import type { RequiredAcl } from '../../src/topology/acls.ts';
import { unique, useBrokerAuth, withAdmin } from './kafka.ts';

// kafkajs is CommonJS: its enums come off the default export
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

export interface SecuredBroker {
  cluster: Cluster;
  layout: SecuredLayout;
  secrets: SecuredSecrets;
  /** the admin listener, for the test helpers (readAll, createTopics, …) */
  harness: string[];
  saslSsl: string;
  mtls: string;
  stop(): Promise<void>;
}

/** A client port with its two neighbours and its controller port (10000 above) that nothing answers on. */
async function freePorts(): Promise<number> {
  for (let port = 9500; port < 9600; port += 3) {
    const taken = await Promise.all([port, port + 1, port + 2, port + 10_000].map((p) => portAnswers(p)));
    if (!taken.some(Boolean)) return port;
  }
  throw new Error('no free ports for a secured broker in 9500-9599 (and 19500-19599)');
}

export async function startSecuredBroker(): Promise<SecuredBroker> {
  const opts = { secured: true, basePort: await freePorts(), heap: '256m', name: unique('secured'), fresh: true };
  const cluster = describeCluster(opts);
  const stop = async () => {
    await stopCluster(cluster);
    if (!process.env.KEEP_TEST_DIRS) rmSync(cluster.dir, { recursive: true, force: true });
  };
  try {
    await startCluster(opts);
  } catch (e) {
    await stop();
    throw e;
  }
  const layout = cluster.secured!;
  const h = harnessClient(cluster);
  useBrokerAuth(h.brokers, { sasl: h.sasl! });
  return {
    cluster,
    layout,
    secrets: securedSecrets(layout),
    harness: h.brokers,
    saslSsl: `127.0.0.1:${layout.saslSslPort}`,
    mtls: `127.0.0.1:${layout.mtlsPort}`,
    stop,
  };
}

const RESOURCE = { topic: AclResourceTypes.TOPIC, group: AclResourceTypes.GROUP, transactionalId: AclResourceTypes.TRANSACTIONAL_ID, cluster: AclResourceTypes.CLUSTER };
const OPERATION = {
  READ: AclOperationTypes.READ,
  WRITE: AclOperationTypes.WRITE,
  CREATE: AclOperationTypes.CREATE,
  DESCRIBE: AclOperationTypes.DESCRIBE,
  DESCRIBE_CONFIGS: AclOperationTypes.DESCRIBE_CONFIGS,
};

const aclOf = (a: RequiredAcl, principal: string) => ({
  resourceType: RESOURCE[a.resource],
  resourceName: a.resource === 'cluster' ? 'kafka-cluster' : a.name,
  resourcePatternType: a.prefixed ? ResourcePatternTypes.PREFIXED : ResourcePatternTypes.LITERAL,
  principal,
  host: '*',
  operation: OPERATION[a.operation],
  permissionType: AclPermissionTypes.ALLOW,
});

/** Grants the ACLs to `principal` (e.g. User:scram512-user) as the super user. */
export async function grantAcls(b: SecuredBroker, principal: string, acls: RequiredAcl[]): Promise<void> {
  await withAdmin((a) => a.createAcls({ acl: acls.map((x) => aclOf(x, principal)) }), b.harness);
}

/** Removes the ACLs of `principal` (one, or all of them). */
export async function revokeAcls(b: SecuredBroker, principal: string, acls: RequiredAcl[]): Promise<void> {
  await withAdmin(
    (a) =>
      a.deleteAcls({
        filters: acls.map((x) => ({ ...aclOf(x, principal) })),
      }),
    b.harness,
  );
}

/** An unsecured JWS (alg none) as the broker's test validator accepts it. */
export function unsecuredJwt(sub: string, lifetimeS: number, scope?: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none' })}.${b64({ sub, iat: now, exp: now + lifetimeS, ...(scope ? { scope } : {}) })}.`;
}

export interface TokenEndpoint {
  url: string;
  clientId: string;
  clientSecret: string;
  /** tokens issued, in order */
  issued: { token: string; at: number }[];
  /** requests refused (wrong client credentials) */
  refused: number;
  /** lifetime of the next tokens, in seconds (negative: already expired) */
  lifetimeS: number;
  close(): Promise<void>;
}

/**
 * A tiny OAuth 2 token endpoint over HTTP on loopback: the client-credentials grant with HTTP Basic client
 * authentication, issuing unsecured JWTs for `sub` with the configured lifetime.
 */
export async function startTokenEndpoint(sub: string, lifetimeS = 3600): Promise<TokenEndpoint> {
  const clientId = 'foldstream-test-client';
  const clientSecret = randomBytes(18).toString('base64url');
  const ep: TokenEndpoint = { url: '', clientId, clientSecret, issued: [], refused: 0, lifetimeS, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (s: string) => (body += s));
    req.on('end', () => {
      const expected = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
      const form = new URLSearchParams(body);
      const answer = (status: number, json: object) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.method !== 'POST' || form.get('grant_type') !== 'client_credentials') return answer(400, { error: 'unsupported_grant_type' });
      if (req.headers.authorization !== expected) {
        ep.refused++;
        return answer(401, { error: 'invalid_client' });
      }
      const token = unsecuredJwt(sub, ep.lifetimeS, form.get('scope') ?? undefined);
      ep.issued.push({ token, at: Date.now() });
      answer(200, { access_token: token, token_type: 'Bearer', expires_in: ep.lifetimeS });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  ep.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  ep.close = () => new Promise<void>((r) => server.close(() => r()));
  return ep;
}
