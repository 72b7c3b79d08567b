// Recipe: luch-request (uni-app) with the kit for the token. Requests to the
// server carry the token; a 401 invalid_token is answered by one silent
// re-login (shared by every request refused at the same time) and one retry.
// Requests to other hosts, and those with custom.auth === false, go as they are.
//
//   import Request from 'luch-request'
//   const http = new Request({ baseURL: client.baseURL })
//   useWxAuth(http, client)
import type { Client } from 'caddy-wxauth-kit'

/** The parts of luch-request's config this recipe reads and writes. */
export interface LuchConfig {
  baseURL?: string
  url?: string
  header?: Record<string, unknown>
  custom?: Record<string, unknown>
}

/** A luch-request response; a non-2xx one reaches the error handler of a response interceptor. */
export interface LuchResponse {
  statusCode: number
  data: unknown
  config: LuchConfig
}

/** The parts of a luch-request instance this recipe uses. */
export interface LuchRequest {
  interceptors: {
    request: { use(onFulfilled: (config: any) => any, onRejected?: (config: any) => any): unknown }
    response: { use(onFulfilled: (response: any) => any, onRejected?: (response: any) => any): unknown }
  }
  request(config: any): Promise<any>
}

/** Adds the token to `http`'s requests to `client.baseURL` and answers a refused token once. */
export function useWxAuth(http: LuchRequest, client: Client): void {
  const ours = (c: LuchConfig) => {
    const url = /^https?:\/\//.test(c.url ?? '') ? c.url! : (c.baseURL ?? '') + (c.url ?? '')
    return c.custom?.auth !== false && url.startsWith(client.baseURL + '/')
  }

  http.interceptors.request.use(async (config: LuchConfig) => {
    if (ours(config)) {
      config.header = { ...config.header, Authorization: 'Bearer ' + (await client.ensureToken()) }
    }
    return config
  })

  http.interceptors.response.use(
    (response: LuchResponse) => response,
    async (response: LuchResponse) => {
      const c = response.config
      const body = response.data as { error?: string; refused_by?: string } | undefined
      const sent = String(c.header?.Authorization ?? '').replace(/^Bearer /, '')
      if (response.statusCode === 401 && body?.error === 'invalid_token' && !body.refused_by && sent && ours(c) && !c.custom?.wxauthRetried) {
        // One new login, shared with every request refused with this token;
        // the request interceptor then sends the new token, and this is the one retry.
        await client.ensureToken({ refused: sent })
        return http.request({ ...c, custom: { ...c.custom, wxauthRetried: true } })
      }
      return Promise.reject(response)
    },
  )
}
