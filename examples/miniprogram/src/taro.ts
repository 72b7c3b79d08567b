// The adapter for Taro: Taro.login, Taro.request and Taro.getRandomValues in
// their promise form, and Taro storage. Taro is not a global: pass the
// default export of '@tarojs/taro'.

import {
  createClient,
  cryptoRandomBytes,
  errMsg,
  WxAuthError,
  type AnyObject,
  type Client,
  type ClientOptions,
  type Platform,
} from './core.js'
import type { WxRequestOption } from './wx.js'

/** The options of `Taro.request` that the client uses: wx.request's, without callbacks. */
export type TaroRequestOption = Omit<WxRequestOption, 'success' | 'fail'>

/** The parts of `Taro` the client uses; `import Taro from '@tarojs/taro'` fits. */
export interface TaroLike {
  /** Resolves with the code; rejects when the login failed. */
  login(option?: AnyObject): Promise<{ code: string; errMsg?: string }>
  /** Resolves for every HTTP status; rejects only when no answer came. */
  request(option: TaroRequestOption): Promise<{ statusCode: number; data: unknown; header?: AnyObject }>
  getStorageSync(key: string): unknown
  setStorageSync(key: string, data: unknown): void
  removeStorageSync(key: string): void
  /** WeChat builds only; elsewhere the client uses `crypto.getRandomValues`. */
  getRandomValues?(option: { length: number }): Promise<{ randomValues: ArrayBuffer }>
}

/** Options of {@link createTaroClient}. */
export interface TaroClientOptions extends ClientOptions {
  /** The Taro object: `import Taro from '@tarojs/taro'`. */
  taro: TaroLike
}

/** Creates a client for a Taro project. Make one per server and share it. */
export function createTaroClient(options: TaroClientOptions): Client {
  if (!options.taro) throw new TypeError('wxauth: pass options.taro (import Taro from "@tarojs/taro")')
  return createClient(taroPlatform(options.taro), options)
}

/** The {@link Platform} for a `Taro`-shaped object. */
export function taroPlatform(t: TaroLike): Platform {
  return {
    login: async () => {
      let res: { code: string; errMsg?: string }
      try {
        res = await t.login()
      } catch (e) {
        throw new WxAuthError(0, 'wx_login_failed', errMsg(e) || 'Taro.login failed', undefined, e)
      }
      if (!res || !res.code) throw new WxAuthError(0, 'wx_login_failed', (res && res.errMsg) || 'Taro.login gave no code')
      return res.code
    },
    request: async (req) => {
      const o: TaroRequestOption = { url: req.url, method: req.method, header: req.header, dataType: 'json' }
      if (req.data !== undefined) o.data = req.data
      if (req.timeout !== undefined) o.timeout = req.timeout
      try {
        const res = await t.request(o)
        return { statusCode: res.statusCode, data: res.data }
      } catch (e) {
        throw new WxAuthError(0, 'network_error', errMsg(e) || 'request failed', undefined, e)
      }
    },
    getStorage: (key) => t.getStorageSync(key),
    setStorage: (key, value) => t.setStorageSync(key, value),
    removeStorage: (key) => t.removeStorageSync(key),
    randomBytes: async (n) => {
      if (typeof t.getRandomValues === 'function') {
        try {
          const v = (await t.getRandomValues({ length: n })).randomValues
          if (v && v.byteLength === n) return new Uint8Array(v)
        } catch {
          // Not this platform (Taro's H5 and other builds): use crypto below.
        }
      }
      return cryptoRandomBytes(n)
    },
  }
}
