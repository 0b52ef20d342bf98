// A third-party RFC 8705 authorization server for the interop tests and notebook 07: the
// OpenID Certified `oidc-provider` package, configured for certificate-bound
// access tokens and both mutual-TLS client authentication methods.
//
// Usage: node server.mjs <config.json>
//
// The config (written by mtlspop_lab/interop/oidc_provider.py) names the TLS files, the
// clients and the resource servers. Once both listeners are up, one JSON line
// goes to stdout: {"issuer", "login_url", "mtls_url", "token_endpoint",
// "mtls_token_endpoint", "jwks_uri"}. The process exits when stdin closes, so
// a crashed test run leaves nothing behind.
//
// Why two listeners: RFC 8705 section 5 lets a server keep its ordinary
// endpoints on server-auth TLS and publish mTLS variants in
// `mtls_endpoint_aliases`. The "login" listener never asks for a client
// certificate; the "mtls" listener asks for one (requestCert) without
// rejecting unknown ones (rejectUnauthorized: false), so that a self-signed
// certificate reaches oidc-provider, which decides by OAuth rules and answers
// with an OAuth error instead of a broken handshake. oidc-provider does not
// read certificates from the socket itself: `features.mTLS.getCertificate`
// hands it the peer certificate of the TLS connection the request came on.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const host = config.host || '127.0.0.1';

const tls = {
  cert: fs.readFileSync(config.server_cert),
  key: fs.readFileSync(config.server_key),
  minVersion: 'TLSv1.2',
};
const loginServer = https.createServer({ ...tls });
const mtlsServer = https.createServer({
  ...tls,
  requestCert: true,
  rejectUnauthorized: false,
  // The CA whose certificates `tls_client_auth` (PKI) clients present; its
  // name is what the CertificateRequest advertises.
  ca: fs.readFileSync(config.client_ca),
});

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(`https://${host}:${server.address().port}`));
  });
}

const loginBase = await listen(loginServer);
const mtlsBase = await listen(mtlsServer);
// The issuer has a path (like Entra's tenant segment): msal's oidc_authority
// needs one, and it shows that clients take endpoints from the metadata.
const prefix = `/${config.issuer_path || 'interop'}`;
const loginUrl = `${loginBase}${prefix}`;
const mtlsUrl = `${mtlsBase}${prefix}`;

// Signing key for access tokens: made fresh at every start, never written.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256',
};

// RFC 4514 order (most specific RDN first) from Node's one-RDN-per-line subject
// (certificate order). Enough for the single-valued RDNs the tests use.
function rfc4514(subject) {
  return subject.split('\n').reverse().join(',');
}

function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
  return socket.getPeerX509Certificate() || undefined;
}

const resources = config.resources || {};

const provider = new Provider(loginUrl, {
  clients: config.clients,
  jwks: { keys: [signingJwk] },
  clientAuthMethods: ['self_signed_tls_client_auth', 'tls_client_auth', 'private_key_jwt'],
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  discovery: {
    mtls_endpoint_aliases: { token_endpoint: `${mtlsUrl}/token` },
  },
  ttl: {
    ClientCredentials: config.access_token_ttl || 600,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      selfSignedTlsClientAuth: true,
      tlsClientAuth: true,
      getCertificate: peerCertificate,
      // tls_client_auth: the certificate must chain to the configured CA...
      certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
      // ...and its subject must be the one registered for the client.
      certificateSubjectMatches(ctx, property, expected) {
        const cert = peerCertificate(ctx);
        if (!cert) return false;
        if (property === 'tls_client_auth_subject_dn') return rfc4514(cert.subject) === expected;
        return false;
      },
    },
    resourceIndicators: {
      enabled: true,
      // An Entra-shaped request names its resource only in the scope
      // (`<resource>/.default`). This deployment maps that to an RFC 8707
      // resource indicator, so an unmodified MSAL-style request works too.
      async defaultResource(ctx) {
        const scope = ctx.oidc.params.scope || '';
        const named = scope.split(' ').find((s) => s.endsWith('/.default'));
        return named ? named.slice(0, -'/.default'.length) : undefined;
      },
      async getResourceServerInfo(ctx, resourceIndicator) {
        const info = resources[resourceIndicator];
        if (!info) throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        return {
          scope: info.scope || '',
          accessTokenFormat: 'jwt',
          accessTokenTTL: info.ttl || config.access_token_ttl || 600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});

provider.on('server_error', (ctx, err) => {
  process.stderr.write(`oidc-provider server_error: ${err && err.message}\n`);
});

// Mounted under `prefix`: oidc-provider derives its mount path from
// req.originalUrl (as when mounted in express), so its URLs keep the prefix.
const callback = provider.callback();
function mounted(req, res) {
  if (req.url !== prefix && !req.url.startsWith(`${prefix}/`) && !req.url.startsWith(`${prefix}?`)) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not_found"}');
    return;
  }
  req.originalUrl = req.url;
  req.url = req.url.slice(prefix.length) || '/';
  callback(req, res);
}
loginServer.on('request', mounted);
mtlsServer.on('request', mounted);

process.stdout.write(`${JSON.stringify({
  issuer: provider.issuer,
  login_url: loginUrl,
  mtls_url: mtlsUrl,
  token_endpoint: `${loginUrl}/token`,
  mtls_token_endpoint: `${mtlsUrl}/token`,
  jwks_uri: `${loginUrl}/jwks`,
  signing_kid: signingJwk.kid,
})}\n`);

function stop() {
  loginServer.close();
  mtlsServer.close();
  process.exit(0);
}
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
