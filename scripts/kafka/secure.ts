// A secured single-node broker for tests and for trying foldstream's security settings locally
// (`npm run kafka:start -- --secured --port N`; docs/security.md). It never replaces the plain broker: it is a cluster
// of its own, on its own ports, with its own data folder. Everything secret is made when its data folder is first
// prepared — a CA, the broker's and a client's certificates (openssl), the passwords — and kept in that folder
// (secrets.json, mode 0600), never in the repository.
//
// Listeners of the one node (port = the cluster's basePort):
//   port       SASL_SSL   PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (the broker's unsecured JWS validator)
//   port + 1   SSL        mutual TLS: a client certificate is required; its CN is the principal
//   port + 2   SASL_PLAINTEXT, PLAIN: the broker's own inter-broker listener, used by the test harness as `admin`
//   port + 10000 CONTROLLER, SASL_PLAINTEXT PLAIN as `admin`
// Authorization: StandardAuthorizer (KRaft), `admin` is the only super user; everyone else gets exactly the ACLs a
// test (or an operator) creates. Sessions of OAUTHBEARER end with their token (connections.max.reauth.ms), so a
// client must re-authenticate with a fresh token before its token expires.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SecuredSecrets {
  admin: { username: 'admin'; password: string };
  plain: { username: string; password: string };
  scram256: { username: string; password: string };
  scram512: { username: string; password: string };
  /** the principal of the client certificate (its CN) */
  mtls: { username: string };
  /** passphrase of the client certificate's encrypted key (client.key.pem) */
  clientKeyPassphrase: string;
}

export interface SecuredLayout {
  dir: string;
  /** SASL_SSL: PLAIN, SCRAM-SHA-256/512, OAUTHBEARER */
  saslSslPort: number;
  /** SSL with a required client certificate */
  mtlsPort: number;
  /** SASL_PLAINTEXT PLAIN, for the broker itself and the test harness (admin) */
  internalPort: number;
  caFile: string;
  clientCertFile: string;
  /** PKCS#8, encrypted with secrets.clientKeyPassphrase */
  clientKeyFile: string;
  secretsFile: string;
}

export function securedLayout(dir: string, basePort: number): SecuredLayout {
  const tls = join(dir, 'tls');
  return {
    dir,
    saslSslPort: basePort,
    mtlsPort: basePort + 1,
    internalPort: basePort + 2,
    caFile: join(tls, 'ca.pem'),
    clientCertFile: join(tls, 'client.pem'),
    clientKeyFile: join(tls, 'client.key.pem'),
    secretsFile: join(dir, 'secrets.json'),
  };
}

const secret = () => randomBytes(18).toString('base64url');

/** The cluster's passwords: made once per data folder, read back afterwards. */
export function securedSecrets(l: SecuredLayout): SecuredSecrets {
  if (existsSync(l.secretsFile)) return JSON.parse(readFileSync(l.secretsFile, 'utf8')) as SecuredSecrets;
  const s: SecuredSecrets = {
    admin: { username: 'admin', password: secret() },
    plain: { username: 'plain-user', password: secret() },
    scram256: { username: 'scram256-user', password: secret() },
    scram512: { username: 'scram512-user', password: secret() },
    mtls: { username: 'mtls-user' },
    clientKeyPassphrase: secret(),
  };
  mkdirSync(l.dir, { recursive: true });
  writeFileSync(l.secretsFile, JSON.stringify(s, null, 2), { mode: 0o600 });
  return s;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`could not run openssl: ${r.error.message}. Install OpenSSL to start a secured broker.`);
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr || r.stdout}`);
}

/**
 * A CA, the broker's certificate (for 127.0.0.1 and localhost) and a client certificate with an encrypted key, all
 * EC P-256 and valid for 30 days; made once per data folder (a fresh cluster makes new ones).
 */
export function ensureCertificates(l: SecuredLayout, s: SecuredSecrets): void {
  const tls = join(l.dir, 'tls');
  if (existsSync(join(tls, '.complete'))) return;
  mkdirSync(tls, { recursive: true });
  const key = (file: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], tls);
  key('ca.key.pem');
  openssl(['req', '-x509', '-new', '-key', 'ca.key.pem', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=foldstream test CA'], tls);
  const issue = (name: string, subject: string, ext: string) => {
    key(`${name}.plain.key.pem`);
    writeFileSync(join(tls, `${name}.ext`), ext);
    openssl(['req', '-new', '-key', `${name}.plain.key.pem`, '-out', `${name}.csr`, '-subj', subject], tls);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key.pem', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '30', '-extfile', `${name}.ext`], tls);
  };
  issue('broker', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  issue('client', `/CN=${s.mtls.username}`, 'extendedKeyUsage=clientAuth\n');
  // the broker reads a PEM keystore: its PKCS#8 key followed by its certificate
  writeFileSync(join(tls, 'broker-keystore.pem'), readFileSync(join(tls, 'broker.plain.key.pem'), 'utf8') + readFileSync(join(tls, 'broker.pem'), 'utf8'));
  openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', 'client.plain.key.pem', '-out', 'client.key.pem',
    '-passout', `pass:${s.clientKeyPassphrase}`], tls);
  for (const f of ['ca.key.pem', 'broker.plain.key.pem', 'broker-keystore.pem', 'client.plain.key.pem', 'client.key.pem']) chmodSync(join(tls, f), 0o600);
  writeFileSync(join(tls, '.complete'), new Date().toISOString());
}

const plainJaas = (s: SecuredSecrets, users: { username: string; password: string }[]) =>
  'org.apache.kafka.common.security.plain.PlainLoginModule required ' +
  `username="admin" password="${s.admin.password}" ` +
  users.map((u) => `user_${u.username}="${u.password}"`).join(' ') +
  ';';

/** server.properties of the secured node (replaces the plain listeners of cluster.ts). */
export function securedProperties(l: SecuredLayout, s: SecuredSecrets): string[] {
  const tls = join(l.dir, 'tls');
  const controllerPort = l.saslSslPort + 10000;
  const tlsFiles = (listener: string) => [
    `listener.name.${listener}.ssl.keystore.type=PEM`,
    `listener.name.${listener}.ssl.keystore.location=${join(tls, 'broker-keystore.pem')}`,
    `listener.name.${listener}.ssl.truststore.type=PEM`,
    `listener.name.${listener}.ssl.truststore.location=${join(tls, 'ca.pem')}`,
  ];
  return [
    `listeners=SASL_SSL://127.0.0.1:${l.saslSslPort},MTLS://127.0.0.1:${l.mtlsPort},INTERNAL://127.0.0.1:${l.internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=SASL_SSL://127.0.0.1:${l.saslSslPort},MTLS://127.0.0.1:${l.mtlsPort},INTERNAL://127.0.0.1:${l.internalPort}`,
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,MTLS:SSL,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT',
    'inter.broker.listener.name=INTERNAL',
    'controller.listener.names=CONTROLLER',
    'sasl.mechanism.inter.broker.protocol=PLAIN',
    'sasl.mechanism.controller.protocol=PLAIN',
    // the broker and the harness
    'listener.name.internal.sasl.enabled.mechanisms=PLAIN',
    `listener.name.internal.plain.sasl.jaas.config=${plainJaas(s, [s.admin])}`,
    'listener.name.controller.sasl.enabled.mechanisms=PLAIN',
    `listener.name.controller.plain.sasl.jaas.config=${plainJaas(s, [s.admin])}`,
    // clients: SASL over TLS
    ...tlsFiles('sasl_ssl'),
    'listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
    `listener.name.sasl_ssl.plain.sasl.jaas.config=${plainJaas(s, [s.admin, s.plain])}`,
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    // no server callback handler set: the broker validates unsecured JWS tokens (alg none), for tests only
    'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin" unsecuredValidatorAllowableClockSkewMs="1000";',
    // a session lasts at most as long as its token, and at most 10 minutes for the other mechanisms
    'listener.name.sasl_ssl.oauthbearer.connections.max.reauth.ms=600000',
    // clients: mutual TLS, the certificate's CN is the principal
    ...tlsFiles('mtls'),
    'listener.name.mtls.ssl.client.auth=required',
    'ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT',
    // ACLs
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'super.users=User:admin',
    'allow.everyone.if.no.acl.found=false',
  ];
}

/** Arguments of the storage tool's `format` that store the SCRAM users in the cluster's metadata. */
export function scramFormatArgs(s: SecuredSecrets): string[] {
  return [
    '--add-scram', `SCRAM-SHA-256=[name=${s.scram256.username},password=${s.scram256.password}]`,
    '--add-scram', `SCRAM-SHA-512=[name=${s.scram512.username},password=${s.scram512.password}]`,
  ];
}
