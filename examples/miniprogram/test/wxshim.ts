// A stand-in for the mini-program `wx` object in Node: wx.login asks wxmock
// for a code, wx.request does real HTTP with fetch, storage is a Map.

import type { WxLike } from '../src/wxauth'

/** One wx.request the shim sent. */
export interface SentRequest {
  method: string
  url: string
  authorization?: string
  body?: string
  /** The HTTP status of the answer, once it came. */
  status?: number
}

/** The shim and what it saw. */
export interface WxShim {
  wx: WxLike
  /** Local storage. Values are stored as copies, as wx does. */
  storage: Map<string, unknown>
  /** How many times wx.login was called. */
  logins: number
  /** Every wx.request, in order. */
  requests: SentRequest[]
  /** When set, wx.login gives this code instead of asking wxmock. */
  code?: string
}

/** Creates a shim whose wx.login logs in as `user` at the wxmock under `mockBase`. */
export function createWxShim(user: string, mockBase = 'http://127.0.0.1:9000'): WxShim {
  const shim: WxShim = { wx: undefined as unknown as WxLike, storage: new Map(), logins: 0, requests: [] }

  const login = (o: WechatMiniprogram.LoginOption = {}): void => {
    shim.logins++
    const fixed = shim.code
    const p =
      fixed !== undefined
        ? Promise.resolve(fixed)
        : fetch(`${mockBase}/wxmock/login?user=${encodeURIComponent(user)}`).then(async (r) => {
            if (!r.ok) throw new Error(`wxmock login: HTTP ${r.status}`)
            return ((await r.json()) as { code: string }).code
          })
    p.then(
      (code) => o.success?.({ code, errMsg: 'login:ok' }),
      (e: Error) => o.fail?.({ errMsg: 'login:fail ' + e.message, errno: 0 }),
    )
  }

  const request = (o: WechatMiniprogram.RequestOption): WechatMiniprogram.RequestTask => {
    const method = o.method ?? 'GET'
    const header: Record<string, string> = { ...(o.header as Record<string, string> | undefined) }
    let url = o.url
    let body: string | ArrayBuffer | undefined
    // wx.request puts object data in the query for GET and encodes it as JSON otherwise.
    if (o.data !== undefined) {
      if (method === 'GET' || method === 'HEAD') {
        if (typeof o.data === 'object' && !(o.data instanceof ArrayBuffer)) {
          const q = new URLSearchParams(o.data as Record<string, string>).toString()
          if (q) url += (url.includes('?') ? '&' : '?') + q
        }
      } else if (typeof o.data === 'string' || o.data instanceof ArrayBuffer) {
        body = o.data
      } else {
        body = JSON.stringify(o.data)
      }
    }
    if (body !== undefined && !Object.keys(header).some((k) => k.toLowerCase() === 'content-type')) {
      header['Content-Type'] = 'application/json'
    }
    const sent: SentRequest = {
      method,
      url,
      authorization: header['Authorization'],
      body: typeof body === 'string' ? body : undefined,
    }
    shim.requests.push(sent)
    const signal = AbortSignal.timeout(o.timeout ?? 60000)
    fetch(url, { method, headers: header, body, signal, redirect: 'follow' })
      .then(async (r) => {
        sent.status = r.status
        const text = await r.text()
        let data: unknown = text
        if (o.dataType === undefined || o.dataType === 'json') {
          try {
            data = text === '' ? '' : JSON.parse(text)
          } catch {
            data = text // wx too hands over the text when it is not JSON
          }
        }
        const h: Record<string, string> = {}
        r.headers.forEach((v, k) => (h[k] = v))
        return { statusCode: r.status, data, header: h, cookies: [], errMsg: 'request:ok' }
      })
      .then(
        (res) => o.success?.(res as unknown as WechatMiniprogram.RequestSuccessCallbackResult),
        (e: Error) =>
          o.fail?.({ errMsg: 'request:fail ' + e.message, errno: 0 } as WechatMiniprogram.RequestFailCallbackErr),
      )
    return { abort() {} } as unknown as WechatMiniprogram.RequestTask
  }

  const fake = {
    login,
    request,
    getStorageSync: (k: string): unknown => (shim.storage.has(k) ? structuredClone(shim.storage.get(k)) : ''),
    setStorageSync: (k: string, v: unknown): void => void shim.storage.set(k, structuredClone(v)),
    removeStorageSync: (k: string): void => void shim.storage.delete(k),
  }
  shim.wx = fake as unknown as WxLike
  return shim
}
