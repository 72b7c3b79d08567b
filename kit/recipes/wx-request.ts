// Recipe: your own wx.request wrapper, with the kit only for the token.
// Every request to the server carries the token; a 401 invalid_token is
// answered by one silent re-login (shared by every request refused at the
// same time) and one retry. Works the same with qq, tt, swan, ks or uni in
// place of wx: pass that object.
import type { Client } from 'caddy-wxauth-kit'

/** What the wrapper sends. */
export interface ApiRequest {
  /** A path on the client's baseURL, starting with '/'. */
  path: string
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  data?: string | Record<string, unknown> | ArrayBuffer
  header?: Record<string, string>
}

/** What it resolves with: the answer of any HTTP status. */
export interface ApiResponse<T> {
  statusCode: number
  data: T
  header: Record<string, string>
}

/** The part of wx.request this wrapper uses. */
export interface WxRequestHost {
  request(option: {
    url: string
    method?: ApiRequest['method']
    data?: ApiRequest['data']
    header?: Record<string, string>
    success(res: { statusCode: number; data: unknown; header?: Record<string, string> }): void
    fail(err: { errMsg: string }): void
  }): unknown
}

/** Makes `api(req)`: wx.request with the token, for paths on `client.baseURL`. */
export function createRequest(client: Client, host: WxRequestHost) {
  const send = <T>(req: ApiRequest, token: string) =>
    new Promise<ApiResponse<T>>((resolve, reject) => {
      host.request({
        url: client.baseURL + req.path,
        method: req.method ?? 'GET',
        data: req.data,
        header: { ...req.header, Authorization: 'Bearer ' + token },
        success: (res) => resolve({ statusCode: res.statusCode, data: res.data as T, header: res.header ?? {} }),
        fail: reject,
      })
    })

  return async function api<T = unknown>(req: ApiRequest): Promise<ApiResponse<T>> {
    const token = await client.ensureToken() // logs in when there is no valid token
    const res = await send<T>(req, token)
    const body = res.data as { error?: string; refused_by?: string } | undefined
    if (res.statusCode === 401 && body?.error === 'invalid_token' && !body.refused_by) {
      // One new login, shared with every request refused with this token; then retry once.
      return send<T>(req, await client.ensureToken({ refused: token }))
    }
    return res
  }
}
