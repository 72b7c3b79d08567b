// Recipe: Taro.addInterceptor with the kit for the token. Taro.request calls
// to the server carry the token; a 401 invalid_token is answered by one
// silent re-login (shared by every request refused at the same time) and one
// retry. Requests to other hosts, and the kit's own (which Taro.request
// also sends through the interceptors, marked wxauth: true), go as they are.
//
//   import Taro from '@tarojs/taro'
//   Taro.addInterceptor(wxauthInterceptor(client))
import type { Client } from 'caddy-wxauth-kit'

/** The parts of Taro's interceptor chain this recipe uses (Taro.Chain fits). */
export interface TaroChain {
  requestParams: { url: string; header?: Record<string, any>; wxauth?: boolean }
  proceed(requestParams: any): Promise<any>
}

/** The interceptor: pass it to Taro.addInterceptor. */
export function wxauthInterceptor(client: Client) {
  return async function wxauth(chain: TaroChain): Promise<any> {
    const req = chain.requestParams
    if (req.wxauth || !req.url.startsWith(client.baseURL + '/')) return chain.proceed(req)
    const send = (token: string) => chain.proceed({ ...req, header: { ...req.header, Authorization: 'Bearer ' + token } })
    const token = await client.ensureToken() // logs in when there is no valid token
    const res = await send(token)
    const body = res?.data as { error?: string; refused_by?: string } | undefined
    if (res?.statusCode === 401 && body?.error === 'invalid_token' && !body.refused_by) {
      // One new login, shared with every request refused with this token; then retry once.
      return send(await client.ensureToken({ refused: token }))
    }
    return res
  }
}
