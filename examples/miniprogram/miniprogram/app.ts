import { client } from './api'

App({
  onLaunch() {
    // Log in early when no token is stored, so the first page does not wait
    // for it. A failure here is not fatal: the first request tries again.
    if (client.getToken() === null) {
      client.ensureToken().catch((e: unknown) => console.warn('wxauth: login failed', e))
    }
  },
})
