// The app's one client: every page imports it, so they share the stored token
// and a login under way.
//
// wxauth/ holds a copy of the client's sources (npm run sync:example makes
// it), so that this folder is a whole project for WeChat DevTools. In your
// own project: npm install the kit and import from 'caddy-wxauth-client'.
import { createWxClient } from './wxauth/wx'

// The server. The demo (example.Caddyfile) serves the app on 127.0.0.1:8080;
// DevTools reaches it with "do not verify domain" (urlCheck false in
// project.config.json). A published mini-program needs an https domain on its
// request domain list.
export const BASE_URL = 'http://127.0.0.1:8080' // ← the one line to change for your server

export const client = createWxClient({ baseURL: BASE_URL, wx })
