// The app's one client: every page imports it, so they share the stored token
// and a login under way.
//
// wxauth/ holds a copy of the kit's sources (npm run sync:example in kit/
// makes it), so that this folder is a whole project for WeChat DevTools. In
// your own project: npm install the kit and import from 'caddy-wxauth-kit'.
import { createWxClient } from './wxauth/wx'

// The server. The demo (example.Caddyfile) serves the app on 127.0.0.1:8080;
// DevTools reaches it with "do not verify domain" (urlCheck false in
// project.config.json). A published mini-program needs an https domain on its
// request domain list (and its uploadFile domain list, for the avatar).
export const BASE_URL = 'http://127.0.0.1:8080' // ← the one line to change for your server

// Your app's own authenticated routes for the profile page: the avatar file
// (multipart, field "avatar") and the nickname (JSON {"nickname"}).
export const AVATAR_PATH = '/api/avatar'
export const PROFILE_PATH = '/api/profile'

// The same line runs on QQ, Douyin, Baidu, Kuaishou and Alipay: the kit finds
// the host by its global and uses its own login.
export const client = createWxClient({ baseURL: BASE_URL })
