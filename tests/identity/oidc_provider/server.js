// A real OpenID Connect provider for csm's SSO tests: panva's certified `oidc-provider`, configured from
// the environment, with its development login page (any password is accepted for a listed account).
//
//   OIDC_PORT      port to listen on (127.0.0.1)
//   OIDC_CLIENTS   JSON list of {client_id, client_secret, redirect_uris}
//   OIDC_ACCOUNTS  JSON list of {login, email, email_verified, groups} (the sign-in page takes the login or
//                  the email; `sub` is what was typed)
//
// Consent is granted automatically (csm is a first-party client of the org's IdP, as in most companies).
// It prints "listening <issuer>" once ready.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 0);
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
// An account signs in with its login or its email address (the login hint csm sends is the email).
const accounts = new Map(JSON.parse(process.env.OIDC_ACCOUNTS || '[]').flatMap((a) => [[a.login, a], [a.email, a]]));
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: `test-${port}`, alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys: [jwk] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  conformIdTokenClaims: false, // the ID token carries the scope's claims (email, groups), as Okta's does
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['csm-test-oidc-provider'] },
  async findAccount(ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id, // oidc-provider requires the id it asked for (the login or the email typed)
      async claims() {
        return {
          sub: id, email: account.email, email_verified: account.email_verified, name: account.name || account.login,
          ...(account.groups ? { groups: account.groups } : {}),
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
