// The adapter for uni-app: uni.login, uni.request and uni storage. It uses
// the callback form, which behaves the same in Vue 2 and Vue 3 projects (their
// promise forms differ: Vue 2 resolves [err, res], Vue 3 resolves res).

import { createClient, type Client, type ClientOptions, type Platform } from './core.js'
import {
  callbackLogin,
  callbackRequest,
  wxRandomBytes,
  type LoginCallbacks,
  type WxLike,
  type WxRandomOption,
} from './wx.js'

/** The parts of `uni` the client uses: those of `wx`, with uni.login's provider. */
export interface UniLike extends Omit<WxLike, 'login' | 'getRandomValues'> {
  login(option: { provider?: string } & Partial<LoginCallbacks>): unknown
  /** Not a uni API today; used when present. */
  getRandomValues?(option: WxRandomOption): unknown
}

/** Options of {@link createUniClient}. */
export interface UniClientOptions extends ClientOptions {
  /** The `uni` object. Default: the global `uni`. */
  uni?: UniLike
  /** The `provider` of uni.login. Default `weixin`. */
  provider?: string
}

// Only the types: the globals exist inside uni-app (and wx in its WeChat build).
declare const uni: UniLike | undefined
declare const wx: WxLike | undefined

/** Creates a client for a uni-app project. Make one per server and share it. */
export function createUniClient(options: UniClientOptions): Client {
  const u = options.uni ?? (typeof uni !== 'undefined' ? uni : undefined)
  if (!u) throw new TypeError('wxauth: no global uni; pass options.uni')
  return createClient(uniPlatform(u, options.provider ?? 'weixin'), options)
}

/** The {@link Platform} for a `uni`-shaped object. */
export function uniPlatform(u: UniLike, provider = 'weixin'): Platform {
  return {
    login: () => callbackLogin((o) => u.login({ provider, ...o }), 'uni.login'),
    request: (req) => callbackRequest(u, req),
    getStorage: (key) => u.getStorageSync(key),
    setStorage: (key, value) => u.setStorageSync(key, value),
    removeStorage: (key) => u.removeStorageSync(key),
    // uni has no random API of its own; in the WeChat build the global wx has one.
    randomBytes: (n) =>
      wxRandomBytes(typeof u.getRandomValues === 'function' ? u : typeof wx !== 'undefined' ? wx : undefined, n),
  }
}
