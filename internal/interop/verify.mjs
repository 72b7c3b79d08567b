// Verifies a wxauth token with the independent `jose` library, using only the
// JWKS that wxauth publishes: node verify.mjs <jwks-url> <token> <app_id>.
// Prints the payload; exits non-zero when jose refuses the token.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksURL, token, appID] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksURL));
const { payload } = await jwtVerify(token, jwks, { audience: appID, issuer: 'wxauth', algorithms: ['EdDSA'] });
process.stdout.write(JSON.stringify(payload));
