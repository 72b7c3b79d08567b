// The app's one client: every page imports it, so they share the stored token
// and a login under way.
//
// In your own project: npm install the kit and import from 'caddy-wxauth-client'.
import { createWxClient } from '../src/wx'

// The demo's Caddy (example.Caddyfile). In the developer tools, tick
// "do not verify request domains" to reach it; a published mini-program needs
// an https domain listed in the request whitelist.
export const client = createWxClient({ baseURL: 'http://127.0.0.1:8080', wx })
