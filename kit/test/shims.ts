// Stand-ins for wx, uni and Taro in Node, for the end-to-end test: the login
// API asks wxmock for a code, the request API does real HTTP with fetch,
// storage is a Map. Each keeps its framework's documented calling convention:
// - wx: callbacks only (wx.login has no promise form); wx.getRandomValues.
// - uni: callbacks, or a promise when none is given (Vue 3 form: resolves
//   res, rejects err); no random API of its own.
// - Taro: promises (Taro.request's resolves {statusCode, data, header,
//   cookies, errMsg} for every status and rejects {errMsg} when no answer
//   came), and Taro.getRandomValues.

import { randomBytes } from 'node:crypto'

import type { Client, ClientOptions } from '../src/core.js'
import { createTaroClient, type TaroLike } from '../src/taro.js'
import { createUniClient, type UniLike } from '../src/uni.js'
import { createWxClient, type WxLike } from '../src/wx.js'
import type { Kind } from './fakes.js'

export { kinds, type Kind } from './fakes.js'

/** One request the shim sent. */
export interface SentRequest {
  method: string
  url: string
  authorization?: string
  body?: string
  /** The HTTP status of the answer, once it came. */
  status?: number
}

/** A shim and what it saw. */
export interface Shim {
  kind: Kind
  /** The stand-in `wx`, `uni` or `Taro` object. */
  host: unknown
  /** Local storage. Values are stored as copies, as the frameworks do. */
  storage: Map<string, unknown>
  /** Calls of the login API. */
  logins: number
  /** Calls of the framework's random API. */
  randoms: number
  /** Every request, in order. */
  requests: SentRequest[]
  /** When set, the login API gives this code instead of asking wxmock. */
  code?: string
  /**
   * How many answers of the login endpoint to lose: the server gets and
   * answers the request, the client is told it failed (as when a phone
   * loses its connection mid-request).
   */
  loseLoginAnswers: number
  /**
   * Rewrites every URL before it is fetched: the example mini-program names
   * the demo's fixed address, the test's Caddy listens on a free port.
   */
  rewrite?: (url: string) => string
  /** Downloaded files by tempFilePath, as the framework keeps them. */
  files: Map<string, Buffer>
  /** A client of this kind on the shim. */
  client(options: ClientOptions): Client
}

interface Reply {
  statusCode: number
  data: unknown
  header: Record<string, string>
  cookies: string[]
  errMsg: string
}

interface Options {
  url: string
  method?: string
  header?: Record<string, string>
  data?: unknown
  timeout?: number
  dataType?: string
}

type Callbacks<T> = {
  success?: (r: T) => void
  fail?: (e: { errMsg: string; errno?: number }) => void
  complete?: (r: unknown) => void
}

/** Creates a shim of `kind` whose login API logs in as `user` at the wxmock under `mockBase`. */
export function createShim(kind: Kind, user: string, mockBase: string): Shim {
  const shim: Shim = {
    kind,
    host: undefined,
    storage: new Map(),
    logins: 0,
    randoms: 0,
    requests: [],
    loseLoginAnswers: 0,
    files: new Map(),
    client: () => {
      throw new Error('set below')
    },
  }

  const code = async (): Promise<{ code: string; errMsg: string }> => {
    shim.logins++
    if (shim.code !== undefined) return { code: shim.code, errMsg: 'login:ok' }
    try {
      const r = await fetch(`${mockBase}/wxmock/login?user=${encodeURIComponent(user)}`)
      if (!r.ok) throw new Error(`wxmock login: HTTP ${r.status}`)
      return { code: ((await r.json()) as { code: string }).code, errMsg: 'login:ok' }
    } catch (e) {
      throw { errMsg: 'login:fail ' + (e as Error).message, errno: 0 }
    }
  }

  // The request APIs' shared behaviour: object data goes in the query for GET
  // and as JSON otherwise; JSON answers are parsed when dataType is json.
  const request = async (o: Options): Promise<Reply> => {
    const method = o.method ?? 'GET'
    const header: Record<string, string> = { ...o.header }
    let url = shim.rewrite ? shim.rewrite(o.url) : o.url
    let body: string | ArrayBuffer | undefined
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
    const sent: SentRequest = { method, url, authorization: header['Authorization'] }
    if (typeof body === 'string') sent.body = body
    shim.requests.push(sent)
    let r: Response
    let text: string
    try {
      r = await fetch(url, { method, headers: header, body, signal: AbortSignal.timeout(o.timeout ?? 60000) })
      text = await r.text()
    } catch (e) {
      throw { errMsg: 'request:fail ' + (e as Error).message, errno: 0 }
    }
    sent.status = r.status
    if (new URL(url).pathname === '/wx/login' && shim.loseLoginAnswers > 0) {
      shim.loseLoginAnswers--
      throw { errMsg: 'request:fail timeout', errno: 5 }
    }
    let data: unknown = text
    if (o.dataType === undefined || o.dataType === 'json') {
      try {
        data = text === '' ? '' : JSON.parse(text)
      } catch {
        data = text // the frameworks too hand over the text when it is not JSON
      }
    }
    const h: Record<string, string> = {}
    r.headers.forEach((v, k) => (h[k] = v))
    return { statusCode: r.status, data, header: h, cookies: [], errMsg: 'request:ok' }
  }

  // downloadFile: the answer's body becomes a temporary file, for every
  // status; its success result has no headers, as the frameworks document.
  const download = async (o: { url: string; header?: Record<string, string>; filePath?: string }) => {
    const url = shim.rewrite ? shim.rewrite(o.url) : o.url
    const sent: SentRequest = { method: 'GET', url, authorization: o.header?.['Authorization'] }
    shim.requests.push(sent)
    let r: Response
    let body: Buffer
    try {
      r = await fetch(url, { headers: o.header ?? {}, signal: AbortSignal.timeout(60000) })
      body = Buffer.from(await r.arrayBuffer())
    } catch (e) {
      throw { errMsg: 'downloadFile:fail ' + (e as Error).message, errno: 0 }
    }
    sent.status = r.status
    const tempFilePath = `wxfile://tmp_${shim.files.size + 1}`
    shim.files.set(tempFilePath, body)
    return { statusCode: r.status, tempFilePath, errMsg: 'downloadFile:ok' }
  }

  // uploadFile: a multipart POST of the file (bytes from files, else a stand-in)
  // and the form fields; the answer's body is handed over as text.
  const upload = async (o: { url: string; header?: Record<string, string>; filePath: string; name: string; formData?: Record<string, string> }) => {
    const url = shim.rewrite ? shim.rewrite(o.url) : o.url
    const sent: SentRequest = { method: 'POST', url, authorization: o.header?.['Authorization'] }
    shim.requests.push(sent)
    const form = new FormData()
    for (const [k, v] of Object.entries(o.formData ?? {})) form.append(k, v)
    form.append(o.name, new Blob([shim.files.get(o.filePath) ?? Buffer.from('stand-in file')]), o.filePath.split('/').pop())
    let r: Response
    let text: string
    try {
      r = await fetch(url, { method: 'POST', headers: o.header ?? {}, body: form, signal: AbortSignal.timeout(60000) })
      text = await r.text()
    } catch (e) {
      throw { errMsg: 'uploadFile:fail ' + (e as Error).message, errno: 0 }
    }
    sent.status = r.status
    return { statusCode: r.status, data: text, errMsg: 'uploadFile:ok' }
  }

  const random = async (length: number): Promise<{ randomValues: ArrayBuffer; errMsg: string }> => {
    shim.randoms++
    const b = randomBytes(length)
    return { randomValues: b.buffer.slice(b.byteOffset, b.byteOffset + length), errMsg: 'getRandomValues:ok' }
  }

  const storage = {
    getStorageSync: (k: string): unknown => (shim.storage.has(k) ? structuredClone(shim.storage.get(k)) : ''),
    setStorageSync: (k: string, v: unknown): void => void shim.storage.set(k, structuredClone(v)),
    removeStorageSync: (k: string): void => void shim.storage.delete(k),
  }

  const callback = <T>(p: Promise<T>, o: Callbacks<T>): void =>
    void p.then(
      (r) => {
        o.success?.(r)
        o.complete?.(r)
      },
      (e: { errMsg: string }) => {
        o.fail?.(e)
        o.complete?.(e)
      },
    )
  const task = { abort() {}, onHeadersReceived() {}, offHeadersReceived() {} }

  if (kind === 'wx') {
    const wx = {
      login: (o: Callbacks<{ code: string; errMsg: string }> = {}) => callback(code(), o),
      request: (o: Options & Callbacks<Reply>) => (callback(request(o), o), task),
      downloadFile: (o: Parameters<typeof download>[0] & Callbacks<unknown>) => (callback(download(o), o), task),
      uploadFile: (o: Parameters<typeof upload>[0] & Callbacks<unknown>) => (callback(upload(o), o), task),
      getRandomValues: (o: { length: number } & Callbacks<{ randomValues: ArrayBuffer }>) => callback(random(o.length), o),
      ...storage,
    }
    shim.host = wx
    shim.client = (opts) => createWxClient({ ...opts, wx: wx as WxLike })
  } else if (kind === 'uni') {
    const either = <T>(p: Promise<T>, o: Callbacks<T>, ret?: object) => {
      if (!o.success && !o.fail && !o.complete) return p
      callback(p, o)
      return ret
    }
    const uni = {
      login: (o: { provider?: string } & Callbacks<{ code: string; errMsg: string }> = {}) => {
        if (o.provider !== undefined && o.provider !== 'weixin') {
          return either(Promise.reject({ errMsg: 'login:fail provider not supported' }), o)
        }
        return either(code(), o)
      },
      request: (o: Options & Callbacks<Reply>) => either(request(o), o, task),
      downloadFile: (o: Parameters<typeof download>[0] & Callbacks<unknown>) => either(download(o), o, task),
      ...storage,
    }
    shim.host = uni
    shim.client = (opts) => createUniClient({ ...opts, uni: uni as UniLike })
  } else {
    const taro = {
      login: (o: Callbacks<{ code: string; errMsg: string }> = {}) => {
        const p = code()
        callback(p, o)
        return p
      },
      request: (o: Options & Callbacks<Reply>) => {
        const p = request(o)
        callback(p, o)
        return Object.assign(p, task)
      },
      downloadFile: (o: Parameters<typeof download>[0]) => Object.assign(download(o), task),
      getRandomValues: (o: { length: number }) => random(o.length),
      ...storage,
    }
    shim.host = taro
    shim.client = (opts) => createTaroClient({ ...opts, taro: taro as TaroLike })
  }
  return shim
}

/** The other platforms' host globals, and the platform each is. */
export const hostPlatforms = { qq: 'qq', tt: 'douyin', swan: 'baidu', ks: 'kuaishou', my: 'alipay' } as const
export type HostGlobal = keyof typeof hostPlatforms

/** A stand-in for another platform's host global, and what it saw. */
export interface HostShim extends Shim {
  /** The platform's login calls, with the options the kit gave them (callbacks left out). */
  loginCalls: Record<string, unknown>[]
  /** Alipay: the number my.getPhoneNumber hands out (sealed by wxmock). */
  phone: string
}

/**
 * A stand-in for the host global `name` (qq, tt, swan, ks, my) with that
 * host's API shape, sending real HTTP: its login API asks wxmock's stand-in
 * of the platform for a code for `user` (Douyin's tt.login also gives an
 * anonymousCode, of the device `device-<user>`, and with force: false only
 * that; Baidu's is swan.getLoginCode; Alipay's my.getAuthCode gives an
 * authCode), and Alipay's my has its own request (headers, status, error 19
 * for a non-2xx answer), storage ({ key }) and my.getPhoneNumber (the text
 * wxmock seals).
 */
export function createHostShim(name: HostGlobal, user: string, mockBase: string): HostShim {
  const base = createShim('wx', user, mockBase)
  const wx = base.host as Record<string, (o: Record<string, any>) => unknown>
  const platform = hostPlatforms[name]
  const shim = base as HostShim
  shim.loginCalls = []
  shim.phone = '13800138000'
  const get = async (path: string): Promise<Record<string, string>> => {
    const r = await fetch(mockBase + path)
    if (!r.ok) throw { errMsg: `login:fail wxmock ${path}: HTTP ${r.status}` }
    return (await r.json()) as Record<string, string>
  }
  const login = (api: string) => (o: Record<string, any>) => {
    const { success, fail, complete: _c, ...opts } = o
    shim.loginCalls.push({ api, ...opts })
    shim.logins++
    const q = `/${platform}/wxmock/login?user=${encodeURIComponent(user)}`
    const run = async () => {
      if (name === 'my') return { authCode: (await get(q)).authCode }
      const res: Record<string, string> = {}
      if (!(name === 'tt' && opts.force === false)) res.code = (await get(q)).code!
      if (name === 'tt') res.anonymousCode = (await get(`/douyin/wxmock/login?user=device-${encodeURIComponent(user)}&anonymous=1`)).anonymous_code!
      return res
    }
    run().then(success, fail)
  }
  if (name !== 'my') {
    const host: Record<string, unknown> = { ...wx, login: login('login') }
    if (name === 'swan') host.getLoginCode = login('getLoginCode')
    shim.host = host
    return shim
  }
  const store = shim.storage
  shim.host = {
    getAuthCode: login('getAuthCode'),
    request: (o: Record<string, any>) =>
      wx.request!({
        url: o.url,
        method: o.method,
        header: o.headers,
        data: o.data,
        dataType: o.dataType,
        success: (r: { statusCode: number; data: unknown; header: Record<string, string> }) =>
          r.statusCode >= 200 && r.statusCode < 300
            ? o.success?.({ status: r.statusCode, data: r.data, headers: r.header })
            : o.fail?.({ error: 19, errorMessage: 'http status error', status: r.statusCode, data: r.data, headers: r.header }),
        fail: (e: { errMsg: string }) => o.fail?.({ error: 12, errorMessage: e.errMsg }),
      }),
    getPhoneNumber: (o: Record<string, any>) => {
      fetch(`${mockBase}/alipay/wxmock/phone?phone=${shim.phone}`)
        .then((r) => r.text())
        .then((response) => o.success?.({ response }), (e) => o.fail?.({ error: 12, errorMessage: String(e) }))
    },
    getStorageSync: ({ key }: { key: string }) => ({ data: store.has(key) ? structuredClone(store.get(key)) : null }),
    setStorageSync: ({ key, data }: { key: string; data: unknown }) => void store.set(key, structuredClone(data)),
    removeStorageSync: ({ key }: { key: string }) => void store.delete(key),
  }
  return shim
}
