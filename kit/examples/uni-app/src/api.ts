// The app's one client and its HTTP layer. The kit logs in on whichever
// platform this build is for (uni-app's compiler fills in
// process.env.UNI_PLATFORM); luch-request sends the app's requests, and the
// kit's recipe adds the token and answers a refused one.
import Request from 'luch-request'
import { createUniClient } from 'caddy-wxauth-kit'
// In your app: copy kit/recipes/luch-request.ts into your sources.
import { useWxAuth } from '../../../recipes/luch-request'

export const BASE_URL = 'http://127.0.0.1:8080' // ← the one line to change for your server

export const client = createUniClient({ baseURL: BASE_URL })

export const http = new Request({ baseURL: BASE_URL })
useWxAuth(http, client)
