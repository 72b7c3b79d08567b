// The adapter for native mini-programs: wx.login, wx.request, wx storage and
// wx.getRandomValues, all in their callback form (wx.login has no promise form).

import {
  createClient,
  cryptoRandomBytes,
  errMsg,
  WxAuthError,
  type AnyObject,
  type Client,
  type ClientOptions,
  type HttpReply,
  type HttpRequest,
  type Method,
  type Platform,
} from './core.js'

/** A mini-program API failure, as `fail` callbacks receive it. */
export interface FailResult {
  errMsg: string
  errno?: number
}

/** The callbacks of a login API (wx.login, uni.login). */
export interface LoginCallbacks {
  success: (res: { code: string; errMsg: string }) => void
  fail: (err: FailResult) => void
}

/** The options of `wx.request` that the client uses. */
export interface WxRequestOption {
  url: string
  method?: Method
  data?: string | AnyObject | ArrayBuffer
  header?: AnyObject
  timeout?: number
  dataType?: 'json'
  /** Called for every HTTP status. */
  success?: (res: { statusCode: number; data: unknown; header?: AnyObject }) => void
  /** Called only when no answer came. */
  fail?: (err: FailResult) => void
}

/** The options of `wx.getRandomValues` (base library 2.15.0+). */
export interface WxRandomOption {
  length: number
  success?: (res: { randomValues: ArrayBuffer }) => void
  fail?: (err: FailResult) => void
}

/** The parts of `wx` the client uses; the real `wx` fits, and tests pass a stand-in. */
export interface WxLike {
  login(option: Partial<LoginCallbacks>): unknown
  request(option: WxRequestOption): unknown
  getStorageSync(key: string): unknown
  setStorageSync(key: string, data: unknown): void
  removeStorageSync(key: string): void
  /** Absent before base library 2.15.0; the client then uses `crypto.getRandomValues`. */
  getRandomValues?(option: WxRandomOption): unknown
}

/** Options of {@link createWxClient}. */
export interface WxClientOptions extends ClientOptions {
  /** The `wx` object. Default: the global `wx`. */
  wx?: WxLike
}

// Only the type: the global exists inside mini-programs.
declare const wx: WxLike | undefined

/** Creates a client for a native mini-program. Make one per server and share it. */
export function createWxClient(options: WxClientOptions): Client {
  const w = options.wx ?? (typeof wx !== 'undefined' ? wx : undefined)
  if (!w) throw new TypeError('wxauth: no global wx; pass options.wx')
  return createClient(wxPlatform(w), options)
}

/** The {@link Platform} for a `wx`-shaped object. */
export function wxPlatform(w: WxLike): Platform {
  return {
    login: () => callbackLogin((o) => w.login(o), 'wx.login'),
    request: (req) => callbackRequest(w, req),
    getStorage: (key) => w.getStorageSync(key),
    setStorage: (key, value) => w.setStorageSync(key, value),
    removeStorage: (key) => w.removeStorageSync(key),
    randomBytes: (n) => wxRandomBytes(w, n),
  }
}

/** Gets a code from a callback-style login API; `name` is for error messages. */
export function callbackLogin(login: (o: LoginCallbacks) => unknown, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    try {
      login({
        success: (res) => {
          if (res && res.code) resolve(res.code)
          else reject(new WxAuthError(0, 'wx_login_failed', (res && res.errMsg) || name + ' gave no code'))
        },
        fail: (err) => reject(new WxAuthError(0, 'wx_login_failed', errMsg(err) || name + ' failed', undefined, err)),
      })
    } catch (e) {
      reject(new WxAuthError(0, 'wx_login_failed', errMsg(e) || name + ' failed', undefined, e))
    }
  })
}

/** Sends a request through a callback-style `request` (wx.request, uni.request). */
export function callbackRequest(host: { request(option: WxRequestOption): unknown }, req: HttpRequest): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const o: WxRequestOption = {
      url: req.url,
      method: req.method,
      header: req.header,
      dataType: 'json',
      // success comes for every HTTP status, fail only when no answer came.
      success: (res) => resolve({ statusCode: res.statusCode, data: res.data }),
      fail: (err) => reject(new WxAuthError(0, 'network_error', errMsg(err) || 'request failed', undefined, err)),
    }
    if (req.data !== undefined) o.data = req.data
    if (req.timeout !== undefined) o.timeout = req.timeout
    try {
      host.request(o)
    } catch (e) {
      reject(new WxAuthError(0, 'network_error', errMsg(e) || 'request failed', undefined, e))
    }
  })
}

/**
 * `n` secure random bytes from `host.getRandomValues` when it has one and it
 * works, else from `crypto.getRandomValues`.
 */
export function wxRandomBytes(host: Pick<WxLike, 'getRandomValues'> | undefined, n: number): Promise<Uint8Array> {
  const get = host && host.getRandomValues
  if (typeof get !== 'function') return fallback(n)
  return new Promise((resolve, reject) => {
    const other = () => fallback(n).then(resolve, reject)
    try {
      get.call(host, {
        length: n,
        success: (res) => {
          // No instanceof: the bridge's ArrayBuffer may come from another realm.
          const v = res && res.randomValues
          const b = v && typeof v.byteLength === 'number' ? new Uint8Array(v) : undefined
          if (b && b.length === n) resolve(b)
          else other()
        },
        fail: other,
      })
    } catch {
      other()
    }
  })
}

function fallback(n: number): Promise<Uint8Array> {
  try {
    return Promise.resolve(cryptoRandomBytes(n))
  } catch (e) {
    return Promise.reject(e)
  }
}
