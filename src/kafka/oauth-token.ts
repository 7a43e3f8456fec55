/**
 * OAUTHBEARER tokens for the Kafka client: the OAuth 2 client-credentials grant (RFC 6749 §4.4) against the
 * topology's token endpoint, client id and secret sent with HTTP Basic authentication (§2.3.1). A token is reused
 * until most of its lifetime has passed (Kafka's Java client refreshes at 80%, sasl.login.refresh.window.factor) and
 * at least REAUTH_MARGIN_MS before it expires: kafkajs re-authenticates a connection 10 s before the broker ends its
 * session (at the token's expiry), and must then get a fresh token, not the one about to expire.
 * Errors name the endpoint and the OAuth error, never the secret or the token.
 *
 * kafkajs's own OAUTHBEARER authenticator ignores the broker's answer: a token the broker refuses (expired, a wrong
 * scope) comes back as an error challenge (RFC 7628 §3.2.2) that kafkajs takes for success, and the broker then drops
 * the connection — the client only says "No brokers in the broker pool" after its retries. oauthBearerAuthenticator
 * reads the answer and stops with KAFKA_AUTHENTICATION_FAILED and the broker's status instead.
 */
import { createRequire } from 'node:module';
import type { AuthenticationProviderArgs, Authenticator } from 'kafkajs';
import { FoldstreamError } from '../errors.ts';
import { registerSecret } from '../secrets.ts';

const require = createRequire(import.meta.url);
/** kafkajs's protocol encoder, so the initial response is framed as its own OAUTHBEARER request is */
const Encoder = require('kafkajs/src/protocol/encoder') as new () => { writeBytes(b: Buffer): { buffer: Buffer } };

export interface ClientCredentials {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  scope?: string | undefined;
}

export interface OAuthToken {
  value: string;
  /** ms since the epoch */
  expiresAt: number;
}

const REFRESH_FACTOR = 0.8;
const REAUTH_MARGIN_MS = 15_000;
/** a token whose endpoint gives no lifetime and that carries no exp claim */
const DEFAULT_LIFETIME_MS = 5 * 60_000;

/** The `exp` claim of a JWT, in ms, if the token is one. */
function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Not retriable: kafkajs gives up at once instead of retrying what cannot succeed (and keeps it as the cause). */
const authFailed = (message: string, hint = 'Check kafka.sasl: tokenEndpoint, clientId and clientSecret (set the secret through ${ENV_VAR} or ENV_VAR_FILE), and that the endpoint answers') =>
  Object.assign(new FoldstreamError('KAFKA_AUTHENTICATION_FAILED', message, { hint }), { retriable: false });

/** One request to the token endpoint. */
export async function fetchToken(c: ClientCredentials, now: () => number = Date.now): Promise<OAuthToken> {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (c.scope) body.set('scope', c.scope);
  const basic = Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`).toString('base64');
  registerSecret(basic);
  let res: Response;
  try {
    res = await fetch(c.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
    throw authFailed(`could not reach the OAuth token endpoint ${c.tokenEndpoint} (${cause})`);
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: reported below by status or missing access_token
  }
  if (!res.ok) {
    const error = typeof json.error === 'string' ? `: ${json.error.slice(0, 100)}` : '';
    throw authFailed(`the OAuth token endpoint ${c.tokenEndpoint} refused client ${c.clientId} (HTTP ${res.status}${error})`);
  }
  const value = json.access_token;
  if (typeof value !== 'string' || value === '') {
    throw authFailed(`the OAuth token endpoint ${c.tokenEndpoint} answered without an access_token`);
  }
  registerSecret(value);
  const obtained = now();
  const expiresIn = typeof json.expires_in === 'number' ? json.expires_in * 1000 : Number(json.expires_in) * 1000;
  const expiresAt = Number.isFinite(expiresIn) && expiresIn > 0 ? obtained + expiresIn : (jwtExpiry(value) ?? obtained + DEFAULT_LIFETIME_MS);
  return { value, expiresAt };
}

/**
 * kafkajs's `oauthBearerProvider`: the current token, fetched again once it is due for refresh. Concurrent calls
 * (connections to several brokers) share one request.
 */
export function oauthBearerProvider(
  c: ClientCredentials,
  opts: { now?: () => number; fetch?: (c: ClientCredentials) => Promise<OAuthToken>; onToken?: (t: OAuthToken) => void } = {},
): () => Promise<{ value: string }> {
  const now = opts.now ?? Date.now;
  const get = opts.fetch ?? ((x: ClientCredentials) => fetchToken(x, now));
  let current: { token: OAuthToken; refreshAt: number } | undefined;
  let pending: Promise<OAuthToken> | undefined;
  return async () => {
    if (current && now() < current.refreshAt) return { value: current.token.value };
    pending ??= get(c).finally(() => (pending = undefined));
    const obtainedAt = now();
    const token = await pending;
    const lifetime = Math.max(0, token.expiresAt - obtainedAt);
    current = { token, refreshAt: Math.min(obtainedAt + lifetime * REFRESH_FACTOR, token.expiresAt - REAUTH_MARGIN_MS) };
    opts.onToken?.(token);
    return { value: token.value };
  };
}

const SOH = '\u0001';

/**
 * kafkajs's `authenticationProvider` for OAUTHBEARER: sends the token as the client's initial response (RFC 7628
 * §3.1, as kafkajs and the Java client do) and fails when the broker answers with an error challenge instead of
 * accepting it.
 */
export function oauthBearerAuthenticator(provider: () => Promise<{ value: string }>, clientId: string) {
  return ({ host, port, saslAuthenticate }: AuthenticationProviderArgs): Authenticator => ({
    authenticate: async () => {
      const token = await provider();
      const message = `n,,${SOH}auth=Bearer ${token.value}${SOH}${SOH}`;
      await saslAuthenticate({
        request: { encode: async () => new Encoder().writeBytes(Buffer.from(message)).buffer },
        response: {
          // the broker's bytes arrive framed as kafkajs frames its request: an int32 length first (0 on success)
          decode: async (bytes: Buffer | null | undefined) =>
            bytes && bytes.length >= 4 && bytes.readInt32BE(0) === bytes.length - 4 ? bytes.subarray(4) : (bytes ?? Buffer.alloc(0)),
          parse: async (bytes: Buffer) => {
            if (bytes.length === 0) return true;
            // the error challenge: {"status":"invalid_token",...}, about the token, never the token itself
            let status = bytes.toString('utf8').slice(0, 200);
            try {
              status = String((JSON.parse(status) as { status?: unknown }).status ?? status);
            } catch {
              // not JSON: keep the text
            }
            throw authFailed(
              `the broker ${host}:${port} refused the OAuth token of client ${clientId} (SASL OAUTHBEARER: ${status})`,
              'The token endpoint issues tokens the broker does not accept: check that they have not expired (clocks), their scope and audience, and the broker\'s OAUTHBEARER settings',
            );
          },
        },
      } as unknown as Parameters<AuthenticationProviderArgs['saslAuthenticate']>[0]);
    },
  });
}
